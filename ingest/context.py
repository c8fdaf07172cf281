"""Gathering an alert's context (core/alert_context.py) in ingest, without ever holding it back.

Four sources, four moments:

- **In memory, at detection** (`HourFlows`): the taker-buy share and the price move of the
  hour, from the same 1m klines the detector sees (streamed, seeded from `candles_1m`,
  backfilled over REST), taken in the same instant the alert is created, so they describe
  exactly the volume that crossed the line. A minute of the hour not seen: unknown.
- **One query before the row is inserted** (`ContextGatherer.add_stored`): rank, 24 h move and
  turnover, funding percentile (db/alert_context.py). Bounded by `STORED_TIMEOUT`: PostgreSQL
  slow or down, those figures are unknown and the alert goes on.
- **Open interest kept warm before the crossing** (ingest/open_interest.py): once the hour
  stands at 2/3 of the rule, a background task reads the hour's start and, every 30 s, the
  current open interest; in the instant the alert is detected, a current figure at most 60 s
  old gives the OI change (with its as-of time, `open_interest_as_of`), so the bot message, the
  card and the API have it from the start. Not warm, not fresh, or refused: unknown.
- **Open interest after the alert is published** (`ContextGatherer.add_open_interest`):
  `GET /fapi/v1/openInterest` (now) and `GET /futures/data/openInterestHist` (5m, from the
  hour's start) through the weight budget, bounded by `OPEN_INTEREST_TIMEOUT`, then merged into
  the stored context (replacing a warm figure with the exact one of that moment and its as-of
  time; a message already sent is not edited for it). The alert never waits for the exchange:
  a message rendered without a warm figure says the OI is unknown; the API and the card read
  the stored context, so they show it once it is there.
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from collections.abc import Callable, Iterable
from dataclasses import replace

import asyncpg

from core.alert_context import (
    AlertContext,
    funding_percentile,
    percent_change,
    rank_top_percent,
    taker_buy_share,
)
from core.alerts import Alert
from core.clock import ms_from_utc
from db import alert_context as db_context
from db.candles import PG_ERRORS
from ingest.binance_rest import BinanceError, BinanceRest
from ingest.open_interest import OPEN_INTEREST_PERIOD, current_figure, hour_start_figure
from ingest.parsers import Kline

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
STORED_TIMEOUT = 0.5  # seconds the stored part may take before the alert goes without it
OPEN_INTEREST_TIMEOUT = 5.0  # seconds for both open-interest requests, retries included
DAY_HOURS = 23  # closed hours before this one that, with this hour, make the 24 h turnover

_EMPTY = bytes(8 * 60)
STORED_FAILURES: tuple[type[Exception], ...] = (TimeoutError, *PG_ERRORS)


class _FlowHour:
    __slots__ = ("closed", "open", "q", "seen", "taker")

    def __init__(self) -> None:
        self.q = array("d", _EMPTY)
        self.taker = array("d", _EMPTY)
        self.seen = 0  # bit m: minute m was seen (partial or closed)
        self.closed = 0  # bit m: minute m is final
        self.open: float | None = None  # open of minute 0: the hour's open


class HourFlows:
    """Per symbol, the current and previous hour's minutes: quote volume, taker-buy quote volume,
    and the hour's open price. Fed with every 1m kline (streamed, seeded, backfilled)."""

    def __init__(self) -> None:
        self._hours: dict[str, dict[int, _FlowHour]] = {}

    def add(self, k: Kline) -> None:
        if k.interval != "1m":
            return
        start = k.open_time_ms - k.open_time_ms % HOUR_MS
        hours = self._hours.setdefault(k.symbol, {})
        h = hours.get(start)
        if h is None:
            newest = max(hours, default=start)
            if start < newest - HOUR_MS:
                return  # older than the previous hour: no alert can still want it
            h = hours[start] = _FlowHour()
            for old in [s for s in hours if s < start - HOUR_MS]:
                del hours[old]
        minute = (k.open_time_ms - start) // MINUTE_MS
        bit = 1 << minute
        if h.closed & bit and not k.closed:
            return  # a stale partial after the minute's final frame
        if k.closed or k.quote_volume >= h.q[minute]:
            h.q[minute] = k.quote_volume
            h.taker[minute] = k.taker_buy_quote
        h.seen |= bit
        if k.closed:
            h.closed |= bit
        if minute == 0:
            h.open = k.open

    def seed(self, klines: Iterable[Kline]) -> None:
        for k in klines:
            self.add(k)

    def forget(self, symbol: str) -> None:
        self._hours.pop(symbol, None)

    def live_context(self, alert: Alert) -> AlertContext:
        """Taker-buy share and hour's price move of `alert`'s hour as they stand now."""
        start = ms_from_utc(alert.hour)
        h = self._hours.get(alert.symbol, {}).get(start)
        if h is None:
            return AlertContext()
        last = min(59, max(0, (ms_from_utc(alert.detected_at) - start) // MINUTE_MS))
        wanted = (1 << (last + 1)) - 1
        share = None
        if h.seen & wanted == wanted:  # every minute of the hour so far is known
            share = taker_buy_share(sum(h.q[: last + 1]), sum(h.taker[: last + 1]))
        return AlertContext(taker_buy_share=share, price_change_1h=percent_change(alert.price, h.open))

    def attach(self, alert: Alert) -> Alert:
        """The alert with its in-memory context (call in the instant it is detected)."""
        return replace(alert, context=self.live_context(alert))


def stored_context(alert: Alert, b: db_context.Baseline) -> AlertContext:
    """The figures of one `db.alert_context.baseline` row, for `alert`."""
    turnover = None
    if b.day_hours >= DAY_HOURS and b.day_turnover is not None:
        turnover = b.day_turnover + alert.current_volume
    return AlertContext(
        price_change_24h=percent_change(alert.price, b.close_24h_ago),
        funding_percentile=funding_percentile(
            alert.funding_rate, b.funding_samples, b.funding_at_or_below, b.funding_since, alert.detected_at
        ),
        turnover_24h=turnover,
        rank_top_percent=rank_top_percent(b.rank_samples, b.rank_at_or_above),
    )


async def open_interest_change(
    rest: BinanceRest, symbol: str, hour_ms: int
) -> tuple[float, int | None] | None:
    """Open interest now against the hour's start, in percent, with the exchange time of the
    current figure; None when the exchange has no row for the hour's start (a symbol listed this
    hour) or answers nonsense."""
    now, rows = await asyncio.gather(
        rest.open_interest(symbol),
        rest.open_interest_hist(symbol, OPEN_INTEREST_PERIOD, start_ms=hour_ms, limit=1),
    )
    current = current_figure(now)
    change = percent_change(None if current is None else current[0], hour_start_figure(rows, hour_ms))
    if change is None or current is None:
        return None
    return change, current[1]


class ContextGatherer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        rest: BinanceRest,
        *,
        stored_timeout: float = STORED_TIMEOUT,
        open_interest_timeout: float = OPEN_INTEREST_TIMEOUT,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._now_ms = now_ms  # exchange time: the as-of time of a figure the exchange did not date
        self._pool = pool
        self._rest = rest
        self.stored_timeout = stored_timeout
        self.open_interest_timeout = open_interest_timeout

    async def add_stored(self, alert: Alert) -> Alert:
        """The alert with the stored part of its context; as it was when that part is slow or
        PostgreSQL fails (those figures stay unknown)."""
        try:
            b = await asyncio.wait_for(
                db_context.baseline(
                    self._pool,
                    alert.symbol,
                    alert.hour,
                    alert.detected_at,
                    alert.current_volume,
                    alert.funding_rate,
                ),
                self.stored_timeout,
            )
        except STORED_FAILURES as exc:
            log.warning(
                "alert context not read, sent without it",
                extra={"symbol": alert.symbol, "error": repr(exc)},
            )
            return alert
        base = alert.context or AlertContext()
        return replace(alert, context=base.merged(stored_context(alert, b)))

    async def add_open_interest(self, saved: Alert) -> float | None:
        """Fetch the hour's open-interest change and merge it into the stored context of the
        published alert `saved`; None (and nothing stored) when the exchange refused or was slow."""
        assert saved.id is not None
        try:
            found = await asyncio.wait_for(
                open_interest_change(self._rest, saved.symbol, ms_from_utc(saved.hour)),
                self.open_interest_timeout,
            )
        except (TimeoutError, BinanceError) as exc:
            log.warning(
                "open interest not read: unknown in the alert's context",
                extra={"symbol": saved.symbol, "id": saved.id, "error": repr(exc)},
            )
            return None
        if found is None:
            return None
        change, as_of = found
        if as_of is None and self._now_ms is not None:
            as_of = self._now_ms()
        part: dict[str, float | None] = {"openInterestChange1h": change, "openInterestAsOf": as_of}
        try:
            await db_context.merge_context(self._pool, saved.id, part)
        except PG_ERRORS as exc:
            log.warning("open interest not stored", extra={"id": saved.id, "error": repr(exc)})
            return None
        return change
