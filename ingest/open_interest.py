"""Open interest kept warm before the crossing, so that the alert's own message can carry it.

An alert is never held back for context, and the exact open-interest figure (two REST requests)
takes longer than the alert takes to be published. So ingest reads it *before*: when a symbol's
hour comes near the rule (`core.alert_context.near_rule`: 2/3 of both the service's multiple and
its minimum volume, the lowest thresholds any user can have), the symbol is *warm* for the rest
of its hour, and a background task fetches

- the hour's start (`GET /futures/data/openInterestHist`, 5m, from the hour's start; once per
  symbol-hour, asked again at the refresh period only while the request fails), and
- the current figure (`GET /fapi/v1/openInterest`, with its exchange time), refreshed every
  `refresh_ms` of exchange time (30 s) while the symbol stays warm,

through the shared weight budget (`BinanceRest`: openInterest weight 1, openInterestHist weight 0,
both at most half of the budget), at most `concurrency` requests at once, each bounded by
`timeout`. At most `limit` symbols (20) are warm at once: a market-wide surge warms the first 20
symbols of the hour to come near the rule, the others are turned away (counted) and get the OI
after publishing only, so the surge costs at most ~40 weight a minute.

`attach`, called in the instant an alert is detected (synchronous, no I/O), lays the warm
change over the alert's context when the current figure is at most 60 s of exchange time away
from the alert (`core.alert_context.warm_open_interest_change`), with its as-of time; otherwise
the figure stays unknown. The detector never waits for any of this: `observe` only touches a
dictionary, the requests run in `run`'s tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from core.alert_context import (
    OPEN_INTEREST_MAX_AGE_MS,
    AlertContext,
    near_rule,
    warm_open_interest_change,
)
from core.alerts import Alert
from core.clock import ms_from_utc
from core.tasks import raise_if_cancelling
from ingest.binance_rest import BinanceRest

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
OPEN_INTEREST_PERIOD = "5m"  # the finest openInterestHist period: its first row is the hour's start
WARM_LIMIT = 20  # symbols kept warm at once
REFRESH_MS = 30_000  # exchange time between two reads of a warm symbol's current open interest
WARM_CONCURRENCY = 4  # warm-up requests in flight at once
WARM_TIMEOUT = 5.0  # seconds for one symbol's requests, retries included
WARM_TICK = 1.0  # seconds between two looks at what is due (and on every newly warm symbol)


def hour_start_figure(rows: Any, hour_ms: int) -> float | None:
    """The open interest at the hour's start from an openInterestHist answer asked from
    `hour_ms`; None when its first row is not the hour's start (a symbol listed this hour) or
    the answer is nonsense."""
    try:
        first = rows[0]
        at = int(first["timestamp"])
        value = float(first["sumOpenInterest"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if not hour_ms <= at < hour_ms + 5 * MINUTE_MS:
        return None
    return value


def current_figure(row: Any) -> tuple[float, int | None] | None:
    """(open interest, its exchange time if given) from an openInterest answer; None if nonsense."""
    try:
        value = float(row["openInterest"])
    except (KeyError, TypeError, ValueError):
        return None
    at = row.get("time") if isinstance(row, dict) else None
    return value, at if isinstance(at, int) and not isinstance(at, bool) else None


class _Warm:
    __slots__ = (
        "as_of_ms",
        "asked_ms",
        "busy",
        "current",
        "hour_ms",
        "start",
        "start_answered",
        "start_asked_ms",
    )

    def __init__(self, hour_ms: int) -> None:
        self.hour_ms = hour_ms
        self.start: float | None = None  # open interest at the hour's start
        self.start_asked_ms: int | None = None
        self.start_answered = False  # the exchange answered (a symbol listed this hour: no start)
        self.current: float | None = None  # the latest current open interest read
        self.as_of_ms: int | None = None  # its exchange time
        self.asked_ms: int | None = None  # exchange time the current figure was last asked
        self.busy = False  # a refresh is in flight


class WarmOpenInterest:
    def __init__(
        self,
        rest: BinanceRest,
        now_ms: Callable[[], int],
        multiple: float,
        min_volume: float,
        *,
        limit: int = WARM_LIMIT,
        refresh_ms: int = REFRESH_MS,
        max_age_ms: int = OPEN_INTEREST_MAX_AGE_MS,
        concurrency: int = WARM_CONCURRENCY,
        timeout: float = WARM_TIMEOUT,
        tick: float = WARM_TICK,
    ) -> None:
        self._rest = rest
        self._now_ms = now_ms  # exchange time
        self.multiple = multiple
        self.min_volume = min_volume
        self.limit = limit
        self.refresh_ms = refresh_ms
        self.max_age_ms = max_age_ms
        self.timeout = timeout
        self.tick = tick
        self._slots = asyncio.Semaphore(concurrency)
        self._warm: dict[str, _Warm] = {}
        self._turned_away: set[tuple[str, int]] = set()  # symbol-hours refused for want of room
        self._wake = asyncio.Event()

    # --- the detector's side: synchronous, no I/O -------------------------------------------

    @property
    def warm(self) -> int:
        return len(self._warm)

    @property
    def turned_away(self) -> int:
        """Symbol-hours near the rule not warmed because `limit` symbols already were."""
        return len(self._turned_away)

    def is_warm(self, symbol: str, hour_ms: int) -> bool:
        """Warm already for `hour_ms` (or a later hour): nothing to observe (the hot path)."""
        w = self._warm.get(symbol)
        return w is not None and w.hour_ms >= hour_ms

    def observe(self, symbol: str, hour_ms: int, ratio: float, volume: float) -> None:
        """The symbol's hour `hour_ms` stands at `ratio` and `volume` (after a kline update)."""
        if self.is_warm(symbol, hour_ms):
            return
        if not near_rule(ratio, volume, self.multiple, self.min_volume):
            return
        now = self._now_ms()
        if hour_ms < now - now % HOUR_MS:
            return  # a late frame of a closed hour: nothing left to alert in it
        self._drop_closed(hour_ms)
        if len(self._warm) >= self.limit:
            self._turned_away.add((symbol, hour_ms))
            return
        self._warm[symbol] = _Warm(hour_ms)
        self._wake.set()

    def forget(self, symbol: str) -> None:
        self._warm.pop(symbol, None)

    def attach(self, alert: Alert) -> Alert:
        """The alert with the warm open-interest change in its context, when fresh."""
        w = self._warm.get(alert.symbol)
        if w is None or w.hour_ms != ms_from_utc(alert.hour):
            return alert
        change = warm_open_interest_change(
            w.start, w.current, w.as_of_ms, ms_from_utc(alert.detected_at), max_age_ms=self.max_age_ms
        )
        if change is None:
            return alert
        assert w.as_of_ms is not None
        known = AlertContext(open_interest_change_1h=change, open_interest_as_of=float(w.as_of_ms))
        return replace(alert, context=(alert.context or AlertContext()).merged(known))

    def _drop_closed(self, hour_ms: int) -> None:
        for symbol in [s for s, w in self._warm.items() if w.hour_ms < hour_ms]:
            del self._warm[symbol]
        self._turned_away = {k for k in self._turned_away if k[1] >= hour_ms}

    # --- the requests -------------------------------------------------------------------

    async def run(self) -> None:
        """Refresh what is due, until cancelled."""
        async with asyncio.TaskGroup() as group:
            while True:
                raise_if_cancelling()
                now = self._now_ms()
                self._drop_closed(now - now % HOUR_MS)
                for symbol, w in self._warm.items():
                    if w.busy:
                        continue
                    want_start = not w.start_answered and (
                        w.start_asked_ms is None or now - w.start_asked_ms >= self.refresh_ms
                    )
                    want_current = w.asked_ms is None or now - w.asked_ms >= self.refresh_ms
                    if want_start or want_current:
                        w.busy = True
                        group.create_task(self._refresh(symbol, w, want_start, want_current))
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.tick)

    async def _refresh(self, symbol: str, w: _Warm, want_start: bool, want_current: bool) -> None:
        try:
            async with self._slots:
                asked = self._now_ms()
                if want_start:
                    w.start_asked_ms = asked
                if want_current:
                    w.asked_ms = asked
                async with asyncio.timeout(self.timeout):
                    start, current = await asyncio.gather(
                        self._start(symbol, w.hour_ms) if want_start else _nothing(),
                        self._current(symbol) if want_current else _nothing(),
                        return_exceptions=True,
                    )
            if want_start and not isinstance(start, BaseException):
                w.start, w.start_answered = start, True
            if isinstance(current, tuple):
                value, at = current
                w.current, w.as_of_ms = value, asked if at is None else at
            for result in (start, current):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                if isinstance(result, BaseException):
                    log.info("open interest not kept warm", extra={"symbol": symbol, "error": repr(result)})
        except TimeoutError as exc:
            log.info("open interest not kept warm", extra={"symbol": symbol, "error": repr(exc)})
        finally:
            w.busy = False

    async def _start(self, symbol: str, hour_ms: int) -> float | None:
        rows = await self._rest.open_interest_hist(symbol, OPEN_INTEREST_PERIOD, start_ms=hour_ms, limit=1)
        return hour_start_figure(rows, hour_ms)

    async def _current(self, symbol: str) -> tuple[float, int | None] | None:
        return current_figure(await self._rest.open_interest(symbol))


async def _nothing() -> None:
    return None
