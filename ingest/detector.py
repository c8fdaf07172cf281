"""The volume-spike rule, evaluated on every kline update in exchange event time. Pure: no I/O.

The rule (DESIGN.md, kept exactly), per symbol, on hourly quote volume (kline `q`):

- `ratio = current_hour_q / previous_closed_hour_q`, 0 when the previous hour is 0 or unknown;
- SPIKE when `ratio >= multiple` and `current >= min_volume`, at most once per symbol-hour;
- HALF_UPDATE at hh:30 for a symbol that spiked this hour, if its first alert came at minute <= 20;
- FULL_UPDATE when the hour closes, for a symbol that spiked in it, unless the first alert came
  at minute >= 55.

Time is the exchange's: the `E` of each kline, and of the `!markPrice@arr@1s` frames passed to
`on_time`. The wall clock is never read, so a recording replays in seconds with the same alerts.

Hour totals. 1m klines fill a 60-slot array per hour: a minute's partial `q` is replaced by a
later (larger) update of the same minute, its closed frame is final, so duplicated or replayed
frames never double count, and a closed frame that arrives after the next minute (or the next
hour) started still lands in its own minute. When a symbol also has 1h klines, the 1h `q` is
authoritative for its hour.

A previous hour is *known* (usable as the ratio's denominator) when it has a 1h kline or when
its 1m data reaches back to minute 0 (streamed from the hour's start, or seeded from REST).
An hour we only saw from the middle would give a too-small denominator and a false spike, so
its ratio is 0 instead.

A SPIKE needs a final denominator: in the first seconds of an hour it waits until the
previous hour's last kline closed (or `CLOSE_GRACE_MS` passed), then fires on that close.

Hour close. FULL_UPDATE for hour H fires on the closed minute-59 (or closed 1h) kline of H, or
once event time passes `H + 1h + CLOSE_GRACE_MS`, whichever comes first, exactly once. A HALF
that was not due before the hour ended (no event between hh:30 and the close) is dropped: the
FULL supersedes it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ingest.parsers import Kline, MarkPrice
from volspike.alerts import Alert, AlertType
from volspike.clock import ms_from_utc, utc_from_ms

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
HALF_MS = 30 * MINUTE_MS
CLOSE_GRACE_MS = 3_000
HALF_LAST_SPIKE_MINUTE = 20  # HALF_UPDATE only when the first alert came at minute <= 20
FULL_FIRST_SKIP_MINUTE = 55  # no FULL_UPDATE when the first alert came at minute >= 55

_EMPTY_HOUR = bytes(8 * 60)


@dataclass(frozen=True, slots=True)
class SymbolSnapshot:
    """What the live market table needs about one symbol, at the detector's event time."""

    symbol: str
    hour_ms: int  # start of the current hour
    current_volume: float
    previous_volume: float  # 0 when the previous hour is unknown
    ratio: float
    price: float | None
    mark_price: float | None
    funding_rate: float | None
    event_time_ms: int


class _Hour:
    """One symbol-hour: per-minute quote volumes, the 1h kline if any, and what already fired."""

    __slots__ = (
        "closed_mask",
        "first_minute",
        "full_done",
        "h1_closed",
        "h1_q",
        "half_done",
        "minutes",
        "spike_minute",
        "spike_previous",
        "start_ms",
    )

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.minutes = array("d", _EMPTY_HOUR)
        self.closed_mask = 0  # bit m set: minute m's closed frame was seen (final)
        self.first_minute = 60  # earliest minute with 1m data; 60 = none
        self.h1_q: float | None = None
        self.h1_closed = False
        self.spike_minute: int | None = None  # minute of the first alert (SPIKE) of this hour
        self.spike_previous: float | None = None  # the (final) denominator the SPIKE used
        self.half_done = False
        self.full_done = False

    def add_minute(self, minute: int, q: float, closed: bool) -> None:
        bit = 1 << minute
        if closed:
            self.minutes[minute] = q
            self.closed_mask |= bit
        elif not self.closed_mask & bit and q > self.minutes[minute]:
            # q only grows within a minute: a stale or repeated partial never lowers it
            self.minutes[minute] = q
        if minute < self.first_minute:
            self.first_minute = minute

    def add_hour(self, q: float, closed: bool) -> None:
        if closed:
            self.h1_q = q
            self.h1_closed = True
        elif not self.h1_closed and (self.h1_q is None or q > self.h1_q):
            self.h1_q = q

    @property
    def total(self) -> float:
        return self.h1_q if self.h1_q is not None else sum(self.minutes)

    @property
    def known(self) -> bool:
        return self.h1_q is not None or self.first_minute == 0

    @property
    def awaits_update(self) -> bool:
        """Spiked, and a HALF or FULL may still be due."""
        m = self.spike_minute
        if m is None or self.full_done:
            return False
        return m < FULL_FIRST_SKIP_MINUTE or (m <= HALF_LAST_SPIKE_MINUTE and not self.half_done)


class _Symbol:
    __slots__ = ("asset", "funding", "has_1h", "hours", "mark", "price", "price_key")

    def __init__(self, asset: str) -> None:
        self.asset = asset
        # the current hour, the previous one, and the one before it (the previous hour's
        # denominator, still needed by its FULL_UPDATE)
        self.hours: dict[int, _Hour] = {}
        self.price: float | None = None
        self.price_key = -1  # open time of the 1m kline the price came from (-1: none yet)
        self.funding: float | None = None
        self.mark: float | None = None
        self.has_1h = False  # the symbol streams 1h klines: they decide its hours

    def hour(self, start_ms: int) -> _Hour | None:
        """The hour's state, created if it is not older than the previous hour we keep."""
        h = self.hours.get(start_ms)
        if h is not None:
            return h
        newest = max(self.hours, default=start_ms)
        if start_ms < newest - HOUR_MS:
            return None  # older than the previous hour: too late to matter
        h = self.hours[start_ms] = _Hour(start_ms)
        if start_ms > newest:
            for old in [s for s in self.hours if s < start_ms - 2 * HOUR_MS]:
                del self.hours[old]
        return h


def default_asset(symbol: str) -> str:
    """`BTCUSDT` → `BTC`; used when exchangeInfo's baseAsset is not known."""
    for quote in ("USDT", "USDC", "BUSD"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)]
    return symbol


class SpikeDetector:
    """Feed it klines (and event time); it returns the alerts due, each exactly once.

    Typical use by ingest::

        detector = SpikeDetector(settings.spike_multiple, settings.spike_min_quote_volume,
                                 assets={"BTCUSDT": "BTC", ...})
        detector.restore(await db.alerts.fired_since(pool, previous_hour))
        detector.seed("BTCUSDT", backfilled_1m_klines)      # previous + current hour
        for frame in frames:
            if isinstance(frame, Kline):        alerts = detector.on_kline(frame)
            elif isinstance(frame, MarkPrices): [detector.set_mark(m) for m in frame.items]
                                                alerts = detector.on_time(frame.event_time_ms)
    """

    def __init__(
        self, multiple: float, min_volume: float, *, assets: Mapping[str, str] | None = None
    ) -> None:
        if multiple <= 0:
            raise ValueError("multiple must be positive")
        self.multiple = multiple
        self.min_volume = min_volume
        self._assets: dict[str, str] = dict(assets or {})
        self._symbols: dict[str, _Symbol] = {}
        self._pending: dict[tuple[str, int], _Hour] = {}  # spiked hours that may owe a HALF/FULL
        self._now_ms = 0

    # --- state ----------------------------------------------------------------------------

    @property
    def event_time_ms(self) -> int:
        """The latest exchange event time seen (0 before the first)."""
        return self._now_ms

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def set_asset(self, symbol: str, asset: str) -> None:
        self._assets[symbol] = asset
        state = self._symbols.get(symbol)
        if state is not None:
            state.asset = asset

    def forget(self, symbol: str) -> None:
        """Drop everything about a delisted symbol (pending HALF/FULL included)."""
        self._symbols.pop(symbol, None)
        self._assets.pop(symbol, None)
        for key in [key for key in self._pending if key[0] == symbol]:
            del self._pending[key]

    def _state(self, symbol: str) -> _Symbol:
        state = self._symbols.get(symbol)
        if state is None:
            asset = self._assets.get(symbol) or default_asset(symbol)
            state = self._symbols[symbol] = _Symbol(asset)
        return state

    def set_mark(self, m: MarkPrice) -> None:
        """Keep the symbol's funding rate and mark price (array frames merge per symbol)."""
        state = self._state(m.symbol)
        state.mark = m.mark_price
        if m.funding_rate is not None:
            state.funding = m.funding_rate

    # --- input ----------------------------------------------------------------------------

    def _apply(self, state: _Symbol, k: Kline) -> _Hour | None:
        if k.interval == "1m":
            start = k.open_time_ms - k.open_time_ms % HOUR_MS
            h = state.hour(start)
            if h is None:
                return None
            h.add_minute((k.open_time_ms - start) // MINUTE_MS, k.quote_volume, k.closed)
            if k.open_time_ms >= state.price_key:
                state.price, state.price_key = k.close, k.open_time_ms
            return h
        if k.interval == "1h":
            h = state.hour(k.open_time_ms - k.open_time_ms % HOUR_MS)
            if h is None:
                return None
            h.add_hour(k.quote_volume, k.closed)
            state.has_1h = True
            if state.price_key < 0:  # 1m klines, when the symbol has them, give the price
                state.price = k.close
            return h
        return None  # other intervals do not feed the rule

    def on_kline(self, k: Kline) -> list[Alert]:
        """Apply one kline update (1m or 1h) and return the alerts it makes due, in order."""
        alerts = self._advance(k.event_time_ms) if k.event_time_ms > self._now_ms else []
        state = self._state(k.symbol)
        h = self._apply(state, k)
        if h is None:
            return alerts
        spike = self._check_spike(k.symbol, state, h, k.event_time_ms)
        if spike is not None:
            alerts.append(spike)
        closes_hour = k.closed and (k.interval == "1h" or (k.open_time_ms - h.start_ms) // MINUTE_MS == 59)
        if closes_hour:
            if h.awaits_update:
                full = self._full(k.symbol, state, h, max(k.event_time_ms, self._now_ms))
                if full is not None:
                    alerts.append(full)
            # a late close of this hour fixes the denominator of the hour after it
            following = state.hours.get(h.start_ms + HOUR_MS)
            if following is not None:
                spike = self._check_spike(k.symbol, state, following, k.event_time_ms)
                if spike is not None:
                    alerts.append(spike)
        return alerts

    def on_time(self, event_ms: int) -> list[Alert]:
        """Advance event time for all symbols: HALF at hh:30, FULL at the hour close + grace."""
        if event_ms <= self._now_ms:
            return []
        return self._advance(event_ms)

    def seed(self, symbol: str, klines: Iterable[Kline]) -> None:
        """Load backfilled klines (e.g. REST 1m rows of the previous and current hour).

        Idempotent with streamed frames of the same minutes (a minute's value is replaced, never
        added). Emits nothing and does not move event time: the next streamed kline of the
        symbol evaluates the rule on the seeded totals, so a spike that happened during the
        backfill gap is alerted then, once.
        """
        state = self._state(symbol)
        for k in klines:
            if k.symbol != symbol:
                raise ValueError(f"seed({symbol!r}) got a kline of {k.symbol!r}")
            self._apply(state, k)

    def restore(self, fired: Iterable[tuple[str, datetime, AlertType, datetime]]) -> None:
        """Rows `(symbol, hour, type, detected_at)` already in PostgreSQL (current and previous
        hour): after a restart no second SPIKE fires, and HALF/FULL stay due or done."""
        for symbol, hour, alert_type, detected_at in fired:
            start = ms_from_utc(hour)
            h = self._state(symbol).hour(start)
            if h is None:
                continue
            if alert_type is AlertType.SPIKE:
                minute = (ms_from_utc(detected_at) - start) // MINUTE_MS
                h.spike_minute = minute if h.spike_minute is None else min(h.spike_minute, minute)
            elif alert_type is AlertType.HALF_UPDATE:
                h.half_done = True
            elif alert_type is AlertType.FULL_UPDATE:
                h.full_done = True
            if h.awaits_update:
                self._pending[(symbol, start)] = h
            else:
                self._pending.pop((symbol, start), None)

    # --- the rule -------------------------------------------------------------------------

    def _volumes(self, state: _Symbol, h: _Hour) -> tuple[float, float, float]:
        current = h.total
        prev = state.hours.get(h.start_ms - HOUR_MS)
        # pruned or never seen: an update still has the denominator of its SPIKE
        previous = prev.total if prev is not None and prev.known else (h.spike_previous or 0.0)
        ratio = current / previous if previous > 0 else 0.0
        return current, previous, ratio

    def _alert(self, symbol: str, state: _Symbol, h: _Hour, kind: AlertType, at_ms: int) -> Alert:
        current, previous, ratio = self._volumes(state, h)
        return Alert(
            symbol=symbol,
            asset=state.asset,
            alert_type=kind,
            hour=utc_from_ms(h.start_ms),
            detected_at=utc_from_ms(at_ms),
            current_volume=current,
            previous_volume=previous,
            ratio=ratio,
            price=state.price or 0.0,
            funding_rate=state.funding,
        )

    def _previous_final(self, state: _Symbol, h: _Hour) -> bool:
        """Whether the denominator of `h` is final: the previous hour's last kline closed,
        or event time is past the close grace (or the previous hour is unknown anyway)."""
        prev = state.hours.get(h.start_ms - HOUR_MS)
        if prev is None or not prev.known or self._now_ms >= h.start_ms + CLOSE_GRACE_MS:
            return True
        if prev.h1_q is not None:
            return prev.h1_closed
        return bool(prev.closed_mask >> 59 & 1)

    def _check_spike(self, symbol: str, state: _Symbol, h: _Hour, at_ms: int) -> Alert | None:
        if h.spike_minute is not None or self._now_ms >= h.start_ms + HOUR_MS + CLOSE_GRACE_MS:
            return None  # spiked already, or closed (a late minute-59 close still counts)
        if not self._previous_final(state, h):
            return None  # evaluated again when the previous hour's last minute closes
        if state.has_1h and h.h1_q is None:
            return None  # wait for the hour's own 1h kline, which is authoritative
        current, previous, ratio = self._volumes(state, h)
        if previous <= 0 or current < self.min_volume or ratio < self.multiple:
            return None
        h.spike_minute = (at_ms - h.start_ms) // MINUTE_MS
        h.spike_previous = previous
        if h.awaits_update:
            self._pending[(symbol, h.start_ms)] = h
        return self._alert(symbol, state, h, AlertType.SPIKE, at_ms)

    def _full(self, symbol: str, state: _Symbol, h: _Hour, at_ms: int) -> Alert | None:
        self._pending.pop((symbol, h.start_ms), None)
        h.full_done = True
        h.half_done = True
        if h.spike_minute is None or h.spike_minute >= FULL_FIRST_SKIP_MINUTE:
            return None
        return self._alert(symbol, state, h, AlertType.FULL_UPDATE, at_ms)

    def _advance(self, now_ms: int) -> list[Alert]:
        self._now_ms = now_ms
        if not self._pending:
            return []
        alerts: list[Alert] = []
        for (symbol, start), h in sorted(self._pending.items(), key=lambda item: item[0][1]):
            state = self._symbols.get(symbol)
            if state is None:  # pragma: no cover - forget() removes pending entries too
                continue
            end = start + HOUR_MS
            if not h.half_done and start + HALF_MS <= now_ms < end:
                h.half_done = True
                if h.spike_minute is not None and h.spike_minute <= HALF_LAST_SPIKE_MINUTE:
                    alerts.append(self._alert(symbol, state, h, AlertType.HALF_UPDATE, now_ms))
            if now_ms >= end + CLOSE_GRACE_MS:
                full = self._full(symbol, state, h, now_ms)
                if full is not None:
                    alerts.append(full)
            elif not h.awaits_update:
                self._pending.pop((symbol, start), None)
        return alerts

    # --- views ----------------------------------------------------------------------------

    def snapshot(self, symbol: str) -> SymbolSnapshot | None:
        """Hour volumes, ratio, price and funding of `symbol` now (None if never seen)."""
        state = self._symbols.get(symbol)
        if state is None:
            return None
        newest = max(state.hours, default=None)
        now_hour = self._now_ms - self._now_ms % HOUR_MS
        hour_ms = max(newest or 0, now_hour)
        h = state.hours.get(hour_ms)
        if h is None:
            prev = state.hours.get(hour_ms - HOUR_MS)
            previous = prev.total if prev is not None and prev.known else 0.0
            current, ratio = 0.0, 0.0
        else:
            current, previous, ratio = self._volumes(state, h)
        return SymbolSnapshot(
            symbol=symbol,
            hour_ms=hour_ms,
            current_volume=current,
            previous_volume=previous,
            ratio=ratio,
            price=state.price,
            mark_price=state.mark,
            funding_rate=state.funding,
            event_time_ms=self._now_ms,
        )
