"""The volume-spike rule, evaluated on every kline update in exchange event time. Pure: no I/O.

The rule (DESIGN.md, kept exactly), per symbol, on hourly quote volume (kline `q`):

- `ratio = current_hour_q / previous_closed_hour_q`, 0 when the previous hour is 0 or unknown;
- SPIKE when `ratio >= multiple` and `current >= min_volume`, at most once per symbol-hour;
- HALF_UPDATE at hh:30 for a symbol that spiked this hour, if its first alert came at minute <= 20;
- FULL_UPDATE when the hour closes, for a symbol that spiked in it, unless the first alert came
  at minute >= 55.

Own thresholds (`core.presets`). After the SPIKE, each update that lifts the hour to a
higher preset multiple or volume (`grades`) emits a *crossing*: a SPIKE alert with a `level`
(the grade it reached) and the figures of that moment, once per grade and symbol-hour. The
users whose own multiple and volume it is the first to satisfy receive it (bot/delivery); it
is never public and never followed by updates of its own (the hour's HALF/FULL are). Nothing
is recorded past the grid's top, and none after a SPIKE that was held back.

Early warning (`core.pace`). While the hour is below a preset multiple, each update whose
pace (the volume so far against the symbol's usual curve for this hour of the day, `set_curve`)
projects the hour's close at a higher preset multiple than recorded so far emits an EARLY alert
with the projected total, once per grade and symbol-hour: the first, when the hour is still
below the service's own multiple, is public (no `level`); later ones carry the multiple the
projection reached. Users receive the earliest EARLY of the hour that projects their own
multiple while the hour is still below it (bot/delivery). No projection without a curve of
enough days, nor in the hour's first minutes; never with a projected total below the minimum
volume.

Time is the exchange's: the `E` of each kline, and of the `!markPrice@arr@1s` frames passed to
`on_time`. The wall clock is never read, so a recording replays in seconds with the same alerts.

Hour totals. 1m klines fill a 60-slot array per hour: a minute's partial `q` is replaced by a
later (larger) update of the same minute, its closed frame is final, so duplicated or replayed
frames never double count, and a closed frame that arrives after the next minute (or the next
hour) started still lands in its own minute. When a symbol also has 1h klines, the 1h `q` is
authoritative for its hour.

An hour is *complete* when all 60 of its minutes are final (closed frames, or closed rows
seeded from REST or `candles_1m`) or its closed 1h kline is known (streamed, or fetched over
REST and given to `set_hour_total`). Only a complete previous hour is a denominator: an hour
with a hole (minutes missed during a reconnect) would give a too-small denominator and a false
spike, so until its minutes or its 1h kline arrive the symbol cannot SPIKE
(`without_denominator`, `incomplete_hours` say which symbols and hours wait).

Updates carry true figures only:

- HALF_UPDATE waits, from hh:30, until minutes 0-28 of the hour are final (after a restart or
  a reconnect: until they are loaded); not loaded before the close, it is held back.
- FULL_UPDATE fires once the hour is complete: on its closing kline, or when the missing
  minutes (backfill) or the 1h kline arrive. Past the close + `CLOSE_GRACE_MS` it waits at most
  `full_wait_ms` of event time (counted from when the detector first saw it due), then it is
  held back rather than sent with an understated total.
- No alert leaves with a zero or unknown current volume, previous volume or price: `_alert`,
  the one constructor of every alert, holds it back instead. Everything held back is reported
  to `on_held_back` (ingest logs and counts it).

Restoring fired alerts (`restore`) is part of seeding: a restored hour that owes an update
fires it only once its minutes are loaded, by the rules above, with the SPIKE's denominator
restored from its row. A SPIKE in the first seconds of an hour waits until the previous hour's
last kline closed, then fires on that close.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from core.alerts import FULL_FIRST_SKIP_MINUTE, HALF_LAST_SPIKE_MINUTE, Alert, AlertType, Level
from core.clock import ms_from_utc, utc_from_ms
from core.pace import Curve, projected_volume
from core.presets import Grades
from ingest.parsers import Kline, MarkPrice, RuleKline

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
HALF_MS = 30 * MINUTE_MS
CLOSE_GRACE_MS = 3_000
FULL_WAIT_MS = 5 * MINUTE_MS  # event time a due FULL_UPDATE waits for missing minutes
ALL_MINUTES = (1 << 60) - 1  # closed_mask of an hour whose 60 minutes are final
HALF_MINUTES = (1 << 29) - 1  # minutes 0-28: final before a HALF_UPDATE is sent

_EMPTY_HOUR = bytes(8 * 60)


class Fired(NamedTuple):
    """A row already in PostgreSQL. Without its figures (ratio, current volume) a restored SPIKE
    counts as having reached the defaults only."""

    symbol: str
    hour: datetime
    alert_type: AlertType
    detected_at: datetime
    previous_volume: float
    ratio: float = 0.0
    current_volume: float = 0.0
    crossing: bool = False  # a crossing of own thresholds (`Alert.level`), not the public SPIKE
    projected_volume: float = 0.0  # an EARLY's projected total


@dataclass(frozen=True, slots=True)
class HeldBack:
    """An alert that was due but not emitted, because its figures were not (all) known."""

    symbol: str
    hour_ms: int
    alert_type: AlertType
    reason: str  # "figures_unknown", "half_not_loaded", "full_incomplete"


@dataclass(frozen=True, slots=True)
class SymbolSnapshot:
    """What the live market table needs about one symbol, at the detector's event time."""

    symbol: str
    hour_ms: int  # start of the current hour
    current_volume: float
    previous_volume: float  # 0 when the previous hour is not complete
    ratio: float
    price: float | None
    mark_price: float | None
    funding_rate: float | None
    event_time_ms: int


class _Hour:
    """One symbol-hour: per-minute quote volumes, the 1h kline if any, and what already fired."""

    __slots__ = (
        "closed_mask",
        "due_since",
        "early_m",
        "full_done",
        "grade_m",
        "grade_v",
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
        self.closed_mask = 0  # bit m set: minute m is final (closed frame or stored row)
        self.h1_q: float | None = None
        self.h1_closed = False
        self.spike_minute: int | None = None  # minute of the first alert (SPIKE) of this hour
        self.spike_previous: float | None = None  # the (complete) denominator the SPIKE used
        self.half_done = False
        self.full_done = False
        self.due_since: int | None = None  # event time its FULL_UPDATE was first due, incomplete
        # the preset multiple and volume (indexes into `Grades`) the hour has been recorded at
        self.grade_m = -1
        self.grade_v = -1
        self.early_m = -1  # the preset multiple (index) an EARLY projected, recorded so far

    def add_minute(self, minute: int, q: float, closed: bool) -> None:
        bit = 1 << minute
        if closed:
            self.minutes[minute] = q
            self.closed_mask |= bit
        elif not self.closed_mask & bit and q > self.minutes[minute]:
            # q only grows within a minute: a stale or repeated partial never lowers it
            self.minutes[minute] = q

    def add_hour(self, q: float, closed: bool) -> None:
        if closed:
            self.h1_q = q
            self.h1_closed = True
        elif not self.h1_closed and (self.h1_q is None or q > self.h1_q):
            self.h1_q = q

    @property
    def complete(self) -> bool:
        """All 60 minutes final, or the closed 1h kline known: the exact total of the hour."""
        return self.h1_closed or self.closed_mask == ALL_MINUTES

    @property
    def total(self) -> float:
        if self.h1_q is not None and (self.h1_closed or self.closed_mask != ALL_MINUTES):
            return self.h1_q
        return sum(self.minutes)

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

    def half_loaded(self, h: _Hour) -> bool:
        """The first half hour's data is final (or, streaming 1h klines, the hour's is known)."""
        if self.has_1h:
            return h.h1_q is not None
        return h.closed_mask & HALF_MINUTES == HALF_MINUTES


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
                                 assets={"BTCUSDT": "BTC", ...}, on_held_back=report)
        detector.restore(await db.alerts.fired_since(pool, previous_hour))
        detector.seed("BTCUSDT", stored_and_backfilled_1m_klines)   # previous + current hour
        for frame in frames:
            if isinstance(frame, Kline):        alerts = detector.on_kline(frame)
            elif isinstance(frame, MarkPrices): [detector.set_mark(m) for m in frame.items]
                                                alerts = detector.on_time(frame.event_time_ms)
        for symbol, hour in detector.incomplete_hours():   # from time to time
            detector.set_hour_total(symbol, hour, closed_1h_kline_from_rest.quote_volume)
    """

    def __init__(
        self,
        multiple: float,
        min_volume: float,
        *,
        assets: Mapping[str, str] | None = None,
        grades: Grades | None = None,
        full_wait_ms: int = FULL_WAIT_MS,
        on_held_back: Callable[[HeldBack], None] | None = None,
    ) -> None:
        if multiple <= 0:
            raise ValueError("multiple must be positive")
        self.multiple = multiple
        self.min_volume = min_volume
        # the preset grid crossings are recorded on (without it: the service's rule only)
        self.grades = grades or Grades.none(multiple, min_volume)
        self._top_m = len(self.grades.multiples) - 1
        self._top_v = len(self.grades.volumes) - 1
        self.full_wait_ms = full_wait_ms
        self._on_held_back = on_held_back
        self.held_back = 0  # alerts held back since start
        self._assets: dict[str, str] = dict(assets or {})
        self._symbols: dict[str, _Symbol] = {}
        self._pending: dict[tuple[str, int], _Hour] = {}  # spiked hours that may owe a HALF/FULL
        self._curves: dict[tuple[str, int], Curve] = {}  # (symbol, UTC hour of the day): usual pace
        self._now_ms = 0

    # --- state ----------------------------------------------------------------------------

    @property
    def event_time_ms(self) -> int:
        """The latest exchange event time seen (0 before the first)."""
        return self._now_ms

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    @property
    def updates_waiting(self) -> int:
        """Spiked hours whose HALF or FULL may still be due."""
        return len(self._pending)

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

    def set_curve(self, symbol: str, hour_of_day: int, curve: Curve) -> None:
        """The symbol's usual volume curve for one UTC hour of the day (`core.pace`)."""
        self._curves[(symbol, hour_of_day)] = curve

    def set_mark(self, m: MarkPrice) -> None:
        """Keep the symbol's funding rate and mark price (array frames merge per symbol)."""
        state = self._state(m.symbol)
        state.mark = m.mark_price
        if m.funding_rate is not None:
            state.funding = m.funding_rate

    # --- input ----------------------------------------------------------------------------

    def _apply(self, state: _Symbol, k: Kline | RuleKline) -> _Hour | None:
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

    def on_kline(self, k: Kline | RuleKline) -> list[Alert]:
        """Apply one kline update (1m or 1h) and return the alerts it makes due, in order."""
        alerts = self._advance(k.event_time_ms) if k.event_time_ms > self._now_ms else []
        state = self._state(k.symbol)
        h = self._apply(state, k)
        if h is None:
            return alerts
        spike = self._check_spike(k.symbol, state, h, k.event_time_ms)
        if spike is not None:
            alerts.append(spike)
        elif h.spike_previous is not None and (h.grade_m < self._top_m or h.grade_v < self._top_v):
            crossing = self._check_climb(k.symbol, state, h, k.event_time_ms)
            if crossing is not None:
                alerts.append(crossing)
        if h.early_m < self._top_m:
            early = self._check_early(k.symbol, state, h, k.event_time_ms)
            if early is not None:
                alerts.append(early)
        if k.closed and h.complete:
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
        """Advance event time for all symbols: HALF from hh:30, FULL once the hour is complete."""
        if event_ms <= self._now_ms:
            return []
        return self._advance(event_ms)

    def seed(self, symbol: str, klines: Iterable[Kline]) -> None:
        """Load stored or backfilled klines (1m rows of `candles_1m` and REST).

        Idempotent with streamed frames of the same minutes (a minute's value is replaced, never
        added). Emits nothing and does not move event time: the next streamed kline of the
        symbol evaluates the rule on the seeded totals, so a spike that happened during the
        backfill gap is alerted then, once; an update that waited for these minutes fires at
        the next event time.
        """
        state = self._state(symbol)
        for k in klines:
            if k.symbol != symbol:
                raise ValueError(f"seed({symbol!r}) got a kline of {k.symbol!r}")
            self._apply(state, k)

    def set_hour_total(self, symbol: str, hour_ms: int, quote_volume: float) -> None:
        """The closed 1h kline of an hour (from REST): its exact total, which completes it.

        Unlike a streamed 1h kline it does not make the symbol a 1h-streaming one; like `seed`
        it emits nothing by itself."""
        h = self._state(symbol).hour(hour_ms - hour_ms % HOUR_MS)
        if h is not None:
            h.add_hour(quote_volume, True)

    def restore(self, fired: Iterable[tuple[Any, ...]]) -> None:
        """Rows already in PostgreSQL (current and previous hour, `Fired` or its first five
        fields): after a restart no second SPIKE or crossing fires, and HALF/FULL stay due or
        done. A due update waits for its hour's minutes like any other, and carries the
        denominator of the restored SPIKE; the rows' figures say which grades were recorded."""
        for row in fired:
            symbol, hour, alert_type, detected_at, previous, ratio, current, crossing, projected = Fired(*row)
            start = ms_from_utc(hour)
            h = self._state(symbol).hour(start)
            if h is None:
                continue
            if alert_type is AlertType.EARLY:
                grade = bisect_right(self.grades.multiples, projected / previous) - 1 if previous > 0 else 0
                h.early_m = max(h.early_m, grade, 0)
                continue
            if alert_type is AlertType.SPIKE:
                grade_m, grade_v = self.grades.grade(ratio, current) if ratio > 0 else (0, 0)
                h.grade_m, h.grade_v = max(h.grade_m, grade_m, 0), max(h.grade_v, grade_v, 0)
                if crossing:
                    continue  # its hour's public SPIKE decides the updates
                minute = (ms_from_utc(detected_at) - start) // MINUTE_MS
                h.spike_minute = minute if h.spike_minute is None else min(h.spike_minute, minute)
                if previous > 0:
                    h.spike_previous = previous
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
        previous = h.spike_previous  # an update carries the denominator of its SPIKE
        if previous is None:
            prev = state.hours.get(h.start_ms - HOUR_MS)
            previous = prev.total if prev is not None and prev.complete else 0.0
        ratio = current / previous if previous > 0 else 0.0
        return current, previous, ratio

    def _hold_back(self, symbol: str, h: _Hour, kind: AlertType, reason: str) -> None:
        self.held_back += 1
        if self._on_held_back is not None:
            self._on_held_back(HeldBack(symbol, h.start_ms, kind, reason))

    def _alert(
        self,
        symbol: str,
        state: _Symbol,
        h: _Hour,
        kind: AlertType,
        at_ms: int,
        level: Level | None = None,
        projected: float | None = None,
    ) -> Alert | None:
        """The one constructor of alerts: None (held back) unless every figure is known."""
        current, previous, ratio = self._volumes(state, h)
        price = state.price
        if not (current > 0 and previous > 0 and price is not None and price > 0):
            self._hold_back(symbol, h, kind, "figures_unknown")
            return None
        return Alert(
            symbol=symbol,
            asset=state.asset,
            alert_type=kind,
            hour=utc_from_ms(h.start_ms),
            detected_at=utc_from_ms(at_ms),
            current_volume=current,
            previous_volume=previous,
            ratio=ratio,
            price=price,
            funding_rate=state.funding,
            level=level,
            projected_volume=projected,
        )

    def _check_spike(self, symbol: str, state: _Symbol, h: _Hour, at_ms: int) -> Alert | None:
        if h.spike_minute is not None or self._now_ms >= h.start_ms + HOUR_MS + CLOSE_GRACE_MS:
            return None  # spiked already, or closed (a late minute-59 close still counts)
        prev = state.hours.get(h.start_ms - HOUR_MS)
        if prev is None or not prev.complete:
            return None  # no denominator yet: evaluated again once it is complete
        if state.has_1h and h.h1_q is None:
            return None  # wait for the hour's own 1h kline, which is authoritative
        current = h.total
        previous = prev.total
        if previous <= 0 or current < self.min_volume or current / previous < self.multiple:
            return None
        h.spike_minute = (at_ms - h.start_ms) // MINUTE_MS
        h.spike_previous = previous
        spike = self._alert(symbol, state, h, AlertType.SPIKE, at_ms)
        if spike is None:
            h.half_done = h.full_done = True  # no update follows a SPIKE that was not sent,
            h.grade_m, h.grade_v = self._top_m, self._top_v  # and no crossing
        else:
            h.grade_m, h.grade_v = self.grades.grade(spike.ratio, spike.current_volume)
            if h.awaits_update:
                self._pending[(symbol, h.start_ms)] = h
        return spike

    def _check_climb(self, symbol: str, state: _Symbol, h: _Hour, at_ms: int) -> Alert | None:
        """A crossing, when this update lifted the spiked hour `h` to a higher grade."""
        previous = h.spike_previous
        assert previous is not None
        current = h.total
        ratio = current / previous
        multiples, volumes = self.grades.multiples, self.grades.volumes
        m, v = h.grade_m + 1, h.grade_v + 1
        if (m > self._top_m or ratio < multiples[m]) and (v > self._top_v or current < volumes[v]):
            return None  # the hot path: no higher grade reached
        if self._now_ms >= h.start_ms + HOUR_MS + CLOSE_GRACE_MS:
            return None  # closed (as for the SPIKE)
        grade_m, grade_v = self.grades.grade(ratio, current)
        h.grade_m, h.grade_v = max(h.grade_m, grade_m), max(h.grade_v, grade_v)
        level = Level(multiples[h.grade_m], volumes[h.grade_v])
        return self._alert(symbol, state, h, AlertType.SPIKE, at_ms, level)

    def _check_early(self, symbol: str, state: _Symbol, h: _Hour, at_ms: int) -> Alert | None:
        """An EARLY, when this update's pace projects the hour `h` at a higher preset multiple than
        recorded so far, one the hour does not stand at yet."""
        elapsed = at_ms - h.start_ms
        if elapsed >= HOUR_MS or self._now_ms >= h.start_ms + HOUR_MS:
            return None  # the hour is over: nothing left to project
        curve = self._curves.get((symbol, (h.start_ms // HOUR_MS) % 24))
        if curve is None:
            return None  # the hot path for a symbol without its usual pace
        previous = h.spike_previous
        if previous is None:
            prev = state.hours.get(h.start_ms - HOUR_MS)
            if prev is None or not prev.complete:
                return None
            previous = prev.total
        if previous <= 0 or (state.has_1h and h.h1_q is None):
            return None
        current = h.total
        projected = projected_volume(curve, current, elapsed)
        if projected is None or projected < self.min_volume:
            return None
        multiples = self.grades.multiples
        grade = bisect_right(multiples, projected / previous) - 1
        if grade <= h.early_m:
            return None
        first = h.early_m < 0
        h.early_m = grade
        ratio = current / previous
        if multiples[grade] <= ratio:
            return None  # the hour already stands at every multiple projected: nothing early
        level = None if first and ratio < multiples[0] else Level(multiples[grade], self.min_volume)
        return self._alert(symbol, state, h, AlertType.EARLY, at_ms, level, projected)

    def _full(self, symbol: str, state: _Symbol, h: _Hour, at_ms: int) -> Alert | None:
        self._pending.pop((symbol, h.start_ms), None)
        h.full_done = True
        h.half_done = True
        if h.spike_minute is None or h.spike_minute >= FULL_FIRST_SKIP_MINUTE:
            return None
        return self._alert(symbol, state, h, AlertType.FULL_UPDATE, at_ms)

    def _half(self, symbol: str, state: _Symbol, h: _Hour, now_ms: int) -> Alert | None:
        """The HALF_UPDATE of `h` if it is due now (None also when it is not owed or waits)."""
        end = h.start_ms + HOUR_MS
        if h.half_done or now_ms < h.start_ms + HALF_MS:
            return None
        owed = h.spike_minute is not None and h.spike_minute <= HALF_LAST_SPIKE_MINUTE
        if now_ms >= end:  # the hour ended first: the FULL supersedes it
            h.half_done = True
            if owed and not state.half_loaded(h):
                self._hold_back(symbol, h, AlertType.HALF_UPDATE, "half_not_loaded")
            return None
        if not state.half_loaded(h):
            return None  # after a restart or a reconnect: once the minutes are loaded
        h.half_done = True
        return self._alert(symbol, state, h, AlertType.HALF_UPDATE, now_ms) if owed else None

    def _advance(self, now_ms: int) -> list[Alert]:
        self._now_ms = now_ms
        if not self._pending:
            return []
        alerts: list[Alert] = []
        for (symbol, start), h in sorted(self._pending.items(), key=lambda item: item[0][1]):
            state = self._symbols.get(symbol)
            if state is None:  # pragma: no cover - forget() removes pending entries too
                continue
            half = self._half(symbol, state, h, now_ms)
            if half is not None:
                alerts.append(half)
            if now_ms >= start + HOUR_MS + CLOSE_GRACE_MS and not h.full_done:
                if h.complete:
                    full = self._full(symbol, state, h, now_ms)
                    if full is not None:
                        alerts.append(full)
                elif h.due_since is None:
                    h.due_since = now_ms  # a restart or a reconnect may only now see it due
                elif now_ms >= h.due_since + self.full_wait_ms:
                    self._pending.pop((symbol, start), None)
                    h.full_done = h.half_done = True
                    self._hold_back(symbol, h, AlertType.FULL_UPDATE, "full_incomplete")
            elif not h.awaits_update:
                self._pending.pop((symbol, start), None)
        return alerts

    # --- views ----------------------------------------------------------------------------

    def without_denominator(self) -> list[str]:
        """Symbols that cannot SPIKE: their previous closed hour is not complete. Judged as of
        the close grace ago, so the seconds in which every hour's last minute closes on the
        stream do not count every symbol."""
        ref = self._now_ms - CLOSE_GRACE_MS
        previous = ref - ref % HOUR_MS - HOUR_MS
        out = []
        for symbol, state in self._symbols.items():
            prev = state.hours.get(previous)
            if prev is None or not prev.complete:
                out.append(symbol)
        return out

    def incomplete_hours(self) -> list[tuple[str, int]]:
        """(symbol, hour start) of closed hours whose exact total is still missing and needed:
        the previous hour of a symbol seen this hour (its denominator), and spiked hours that
        owe a FULL_UPDATE. A closed 1h kline from REST (`set_hour_total`) completes them."""
        now = self._now_ms
        if now - now % HOUR_MS + CLOSE_GRACE_MS > now:
            return []  # the previous hour's last minute may still close on the stream
        current = now - now % HOUR_MS
        wanted: dict[tuple[str, int], None] = {}
        for (symbol, start), h in self._pending.items():
            if start < current and not h.complete and not h.full_done:
                wanted[(symbol, start)] = None
        for symbol, state in self._symbols.items():
            if current not in state.hours:
                continue
            prev = state.hours.get(current - HOUR_MS)
            if prev is None or not prev.complete:
                wanted[(symbol, current - HOUR_MS)] = None
        return list(wanted)

    def standing(self, symbol: str, hour_ms: int) -> tuple[float, float] | None:
        """The hour's volume so far and its ratio to the previous hour (0 without a complete
        previous hour); None for an hour not kept."""
        state = self._symbols.get(symbol)
        h = None if state is None else state.hours.get(hour_ms)
        if state is None or h is None:
            return None
        current, _, ratio = self._volumes(state, h)
        return current, ratio

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
            previous = prev.total if prev is not None and prev.complete else 0.0
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
