"""The market model: deterministic prices and volumes, spikes, listings.

The 1-minute kline of (symbol, minute) is a pure function of (seed, symbol, minute open time)
plus the spikes that were injected into that minute. Anything longer is the aggregate of its
minutes, so REST history always matches what the streams showed.

Prices are multi-scale value noise (O(1) per minute, continuous across minutes: a minute opens
at the previous minute's close). Inside a minute the path is a Brownian bridge over 5-second
steps; volume arrives along the same steps, so an in-progress candle is a prefix of the final one.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from .universe import (
    HOUR_MS,
    MINUTE_MS,
    PERPETUAL_DELIVERY_MS,
    SymbolInfo,
    make_symbol,
)

STEPS = 6  # 10-second steps inside a minute
STEP_MS = MINUTE_MS // STEPS
OPEN_INTEREST_STEP_MS = 5 * MINUTE_MS
OPENING_SHARE = 0.004  # share of a minute's volume traded in its very first moment
TRADE_ID_STRIDE = 10_000_000  # first trade id of minute m is m * stride
SPIKE_TAKER_SHARE = 0.7
SPIKE_RAMP_MS = 2000  # a triggered spike arrives over this long
_MASK = (1 << 64) - 1

# (period in minutes, amplitude of log price) — roughly Brownian scaling
_OCTAVES: tuple[tuple[int, float], ...] = (
    (1, 0.0006),
    (7, 0.0013),
    (31, 0.0028),
    (127, 0.0055),
    (509, 0.011),
    (2003, 0.022),
    (10007, 0.045),
    (43201, 0.08),
)

INTERVALS: dict[str, int] = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "6h": 360,
    "8h": 480,
    "12h": 720,
    "1d": 1440,
}


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fast, stable integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _unit(key: int, a: int, b: int) -> float:
    """A stable uniform number in [0, 1) from three integers."""
    return _mix(key ^ _mix((a * 0x632BE59BD9B4E019 + b) & _MASK)) / 18446744073709551616.0


_LANES = (2 * STEPS + 3 + 3) // 4


def _uniforms(seed: int) -> list[float]:
    """2 x STEPS + 3 stable uniforms in [0, 1) (16-bit resolution) from one seed: the per-minute
    random source (a splitmix64 stream: cheaper than seeding a ``random.Random`` per minute)."""
    out: list[float] = []
    x = seed
    for _ in range(_LANES):
        x = _mix(x)
        out.extend(
            (
                (x & 0xFFFF) / 65536.0,
                ((x >> 16) & 0xFFFF) / 65536.0,
                ((x >> 32) & 0xFFFF) / 65536.0,
                (x >> 48) / 65536.0,
            )
        )
    return out


def _smooth(t: float) -> float:
    return t * t * (3.0 - 2.0 * t)


@lru_cache(maxsize=262144)
def _grid(key: int, octave: int, j: int) -> float:
    return _unit(key, octave, j) * 2.0 - 1.0


@lru_cache(maxsize=65536)
def _log_price_offset(key: int, minute: int) -> float:
    """Log-price offset from the reference price at the boundary that opens ``minute``."""
    total = _OCTAVES[0][1] * _grid(key, 0, minute)
    for octave in range(1, len(_OCTAVES)):
        period, amplitude = _OCTAVES[octave]
        j, r = divmod(minute, period)
        a = _grid(key, octave, j)
        b = _grid(key, octave, j + 1)
        total += amplitude * (a + (b - a) * _smooth(r / period))
    return total


@dataclass(frozen=True, slots=True)
class HourInfo:
    factor: float  # lognormal level of this hour's volume
    burst_start: int  # minute-in-hour where an organic burst starts (-1: none)
    burst_len: int
    burst_mult: float  # per-minute volume multiple inside the burst


@lru_cache(maxsize=65536)
def _hour_info(key: int, hour: int, burst_rate: float) -> HourInfo:
    u1 = max(_unit(key, 101, hour), 1e-12)
    u2 = _unit(key, 102, hour)
    gauss = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    factor = math.exp(0.25 * gauss - 0.03125)
    if _unit(key, 103, hour) < burst_rate:
        start = int(_unit(key, 104, hour) * 48)
        length = 3 + int(_unit(key, 105, hour) * 8)
        total = 3.5 + 3.5 * _unit(key, 106, hour)  # the hour ends at ~3.5-7x a normal hour
        return HourInfo(factor, start, length, 1.0 + (total - 1.0) * 60.0 / length)
    return HourInfo(factor, -1, 0, 1.0)


def _diurnal(hour: int) -> float:
    hour_of_day = hour % 24
    return 1.0 + 0.35 * math.cos(2.0 * math.pi * (hour_of_day - 14) / 24.0)


@dataclass(slots=True)
class Candle:
    """A kline as numbers; ``payloads`` turns it into Binance's strings."""

    open_ms: int
    close_ms: int
    o: float
    h: float
    l: float  # noqa: E741
    c: float
    v: float
    q: float
    n: int
    bv: float  # taker buy base volume
    bq: float  # taker buy quote volume
    first_id: int
    last_id: int

    def merge(self, later: Candle) -> Candle:
        """This candle followed by ``later`` (keeps this open time; close time set by caller)."""
        return Candle(
            self.open_ms,
            later.close_ms,
            self.o,
            max(self.h, later.h),
            min(self.l, later.l),
            later.c,
            self.v + later.v,
            self.q + later.q,
            self.n + later.n,
            self.bv + later.bv,
            self.bq + later.bq,
            self.first_id if self.n else later.first_id,
            later.last_id if later.n else self.last_id,
        )


@dataclass(slots=True)
class MinutePlan:
    """Everything about one (symbol, minute), before spikes."""

    open_ms: int
    prices: tuple[float, ...]  # STEPS + 1 tick-rounded prices on the 5-second grid
    cum_quote: tuple[float, ...]  # cumulative quote volume at each grid point
    cum_base: tuple[float, ...]
    trades: int
    taker: float


@dataclass(frozen=True, slots=True)
class Spike:
    """Extra quote volume arriving linearly over [start_ms, start_ms + duration_ms]."""

    minute_open_ms: int
    start_ms: int
    duration_ms: int
    quote: float
    price: float  # converts quote to base

    def share(self, t_ms: int) -> float:
        if t_ms <= self.start_ms:
            return 0.0
        if t_ms >= self.start_ms + self.duration_ms:
            return 1.0
        return (t_ms - self.start_ms) / self.duration_ms


@dataclass(frozen=True, slots=True)
class SpikeInfo:
    symbol: str
    minute_open_ms: int
    start_ms: int
    end_ms: int
    extra_quote: float
    previous_hour_quote: float
    target_hour_quote: float  # the hour's quote volume once the spike has arrived

    def as_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "minuteOpenTime": self.minute_open_ms,
            "startTime": self.start_ms,
            "endTime": self.end_ms,
            "extraQuoteVolume": self.extra_quote,
            "previousHourQuoteVolume": self.previous_hour_quote,
            "targetHourQuoteVolume": self.target_hour_quote,
        }


@dataclass(slots=True)
class _SymbolState:
    info: SymbolInfo
    spikes: dict[int, list[Spike]] = field(default_factory=dict)  # by minute open
    closed: dict[int, Candle] = field(default_factory=dict)  # closed 1m candles by open
    closed_agg: dict[tuple[int, int], Candle | None] = field(default_factory=dict)
    partial_agg: dict[tuple[int, int], tuple[int, Candle | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Pending:
    at_ms: int
    symbol: str
    multiple: float
    min_quote_volume: float


class UnknownSymbol(KeyError):
    pass


class Market:
    def __init__(self, seed: int, symbols: Iterable[SymbolInfo], *, natural_spike_rate: float = 0.0) -> None:
        self.seed = seed
        self.natural_spike_rate = natural_spike_rate
        self._states: dict[str, _SymbolState] = {}
        self._by_lower: dict[str, _SymbolState] = {}
        self._plans: dict[tuple[int, int], MinutePlan] = {}
        self._pending: list[_Pending] = []
        self.version = 0  # bumps on listing changes
        for info in symbols:
            self._add(info)

    # ----------------------------------------------------------------- universe
    def _add(self, info: SymbolInfo) -> None:
        state = _SymbolState(info)
        self._states[info.symbol] = state
        self._by_lower[info.stream_symbol] = state
        self.version += 1

    def symbols(self) -> list[SymbolInfo]:
        return [s.info for s in self._states.values()]

    def get(self, symbol: str) -> SymbolInfo | None:
        state = self._states.get(symbol)
        return state.info if state else None

    def by_stream_symbol(self, lower: str) -> SymbolInfo | None:
        state = self._by_lower.get(lower)
        return state.info if state else None

    def _state(self, symbol: str) -> _SymbolState:
        try:
            return self._states[symbol]
        except KeyError:
            raise UnknownSymbol(symbol) from None

    def list_symbol(
        self,
        symbol: str,
        now_ms: int,
        *,
        ref_price: float | None = None,
        hourly_quote: float | None = None,
    ) -> SymbolInfo:
        """List a new USDT perpetual that starts trading at ``now_ms`` (its onboard time)."""
        if symbol in self._states:
            raise ValueError(f"{symbol} is already listed")
        base = symbol[:-4] if symbol.endswith("USDT") else symbol
        onboard = now_ms // MINUTE_MS * MINUTE_MS
        info = make_symbol(self.seed, symbol, base, ref_price=ref_price, onboard_ms=onboard)
        if hourly_quote is not None:
            info.hourly_quote = hourly_quote
        self._add(info)
        return info

    def delist_symbol(self, symbol: str, now_ms: int, at_ms: int | None = None) -> SymbolInfo:
        """Delist at ``at_ms`` (default now): deliveryDate moves there; the status turns SETTLING
        when it passes (CLOSE an hour later) and the streams stop."""
        state = self._state(symbol)
        when = now_ms if at_ms is None else at_ms
        state.info.delivery_ms = when
        state.info.delisted = True
        self.version += 1
        return state.info

    # ----------------------------------------------------------------- minutes
    def _plan(self, info: SymbolInfo, minute: int) -> MinutePlan:
        cache_key = (info.key, minute)
        plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        if len(self._plans) > 400_000:
            self._plans.clear()
        key = info.key
        u = _uniforms(key ^ (minute * 0x9E3779B97F4A7C15 & _MASK))
        vol = info.volatility
        lo = _log_price_offset(key, minute) * vol
        lc = _log_price_offset(key, minute + 1) * vol
        # a Brownian bridge from lo to lc over STEPS steps (uniform increments, same variance)
        step = _OCTAVES[0][1] * vol * 0.35 * 3.4641016151377544  # sqrt(12)
        walk = 0.0
        bridge = [0.0]
        for i in range(STEPS):
            walk += (u[i] - 0.5) * step
            bridge.append(walk)
        base = info.ref_price * math.exp(lo)
        pp = info.price_precision
        tick = info.tick
        slope = (lc - lo - walk) / STEPS
        prices = [
            round(base * (1.0 + x + 0.5 * x * x), pp) for x in [b + slope * i for i, b in enumerate(bridge)]
        ]
        if min(prices) < tick:
            prices = [max(tick, p) for p in prices]

        hour = minute // 60
        hinfo = _hour_info(key, hour, self.natural_spike_rate)
        minute_in_hour = minute % 60
        quote = info.hourly_quote / 60.0 * hinfo.factor * _diurnal(hour) * (0.5 + u[STEPS])
        if hinfo.burst_start <= minute_in_hour < hinfo.burst_start + hinfo.burst_len:
            quote *= hinfo.burst_mult
        weights = [w + 0.15 for w in u[STEPS + 1 : 2 * STEPS + 1]]
        wsum = sum(weights)
        rest = quote * (1.0 - OPENING_SHARE)
        cq = quote * OPENING_SHARE
        cb = cq / prices[0]
        cum_quote = [cq]
        cum_base = [cb]
        for i, w in enumerate(weights):
            part = rest * w / wsum
            cq += part
            cb += part * 2.0 / (prices[i] + prices[i + 1])
            cum_quote.append(cq)
            cum_base.append(cb)
        trades = max(
            1, min(TRADE_ID_STRIDE // 2, round(quote / info.avg_trade_quote * (0.8 + 0.4 * u[2 * STEPS + 1])))
        )
        plan = MinutePlan(
            open_ms=minute * MINUTE_MS,
            prices=tuple(prices),
            cum_quote=tuple(cum_quote),
            cum_base=tuple(cum_base),
            trades=trades,
            taker=0.42 + 0.16 * u[2 * STEPS + 2],
        )
        self._plans[cache_key] = plan
        return plan

    def _minute_candle(
        self, state: _SymbolState, open_ms: int, t_ms: int, *, cache: bool = True
    ) -> Candle | None:
        """The 1m candle opening at ``open_ms`` as seen at ``t_ms`` (None: no trading)."""
        info = state.info
        if not info.trades_at(open_ms) or t_ms < open_ms:
            return None
        close_ms = open_ms + MINUTE_MS - 1
        closed = t_ms > close_ms
        if closed:
            cached = state.closed.get(open_ms)
            if cached is not None:
                return cached
        plan = self._plan(info, open_ms // MINUTE_MS)
        prices = plan.prices
        if closed:
            c = prices[-1]
            h = max(prices)
            lo = min(prices)
            q = plan.cum_quote[-1]
            v = plan.cum_base[-1]
        else:
            pos = (t_ms - open_ms) / STEP_MS
            k = int(pos)
            x = pos - k
            p0, p1 = prices[k], prices[k + 1]
            c = round(p0 + (p1 - p0) * x, info.price_precision)
            seen = prices[: k + 1]
            h = max(max(seen), c)
            lo = min(min(seen), c)
            q0, q1 = plan.cum_quote[k], plan.cum_quote[k + 1]
            b0, b1 = plan.cum_base[k], plan.cum_base[k + 1]
            q = q0 + (q1 - q0) * x
            v = b0 + (b1 - b0) * x
        total_quote = plan.cum_quote[-1]
        n = plan.trades if closed else max(1, round(plan.trades * q / total_quote))
        bq = q * plan.taker
        bv = v * plan.taker
        spikes = state.spikes.get(open_ms)
        if spikes:
            for spike in spikes:
                share = spike.share(close_ms + 1 if closed else t_ms)
                if share <= 0.0:
                    continue
                xq = spike.quote * share
                xb = xq / spike.price
                q += xq
                v += xb
                bq += xq * SPIKE_TAKER_SHARE
                bv += xb * SPIKE_TAKER_SHARE
                n += max(1, round(xq / info.avg_trade_quote))
        n = min(n, TRADE_ID_STRIDE - 1)
        first_id = (open_ms // MINUTE_MS) * TRADE_ID_STRIDE
        candle = Candle(open_ms, close_ms, prices[0], h, lo, c, v, q, n, bv, bq, first_id, first_id + n - 1)
        if closed and cache:
            if len(state.closed) > 20_000:
                state.closed.clear()
            state.closed[open_ms] = candle
        return candle

    def _aggregate(self, state: _SymbolState, minutes: int, open_ms: int, t_ms: int) -> Candle | None:
        """The ``minutes``-long candle opening at ``open_ms`` as seen at ``t_ms``."""
        close_ms = open_ms + minutes * MINUTE_MS - 1
        if minutes == 1:
            return self._minute_candle(state, open_ms, t_ms)
        if t_ms < open_ms:
            return None
        cache_key = (minutes, open_ms)
        if t_ms > close_ms:
            if cache_key in state.closed_agg:
                return state.closed_agg[cache_key]
            agg = self._sum_minutes(state, open_ms, close_ms + 1, t_ms, None)
            result = None if agg is None else _rebox(agg, open_ms, close_ms)
            if len(state.closed_agg) > 20_000:
                state.closed_agg.clear()
            state.closed_agg[cache_key] = result
            return result
        # in progress: closed minutes (cached, extended incrementally) + the current minute
        current = t_ms // MINUTE_MS * MINUTE_MS
        upto, agg = state.partial_agg.get(cache_key, (open_ms, None))
        if upto > current:  # asked about an earlier moment than the cache: no shortcut
            agg = self._sum_minutes(state, open_ms, current, t_ms, None)
        elif upto < current:
            agg = self._sum_minutes(state, upto, current, t_ms, agg)
            if len(state.partial_agg) > 4096:
                state.partial_agg.clear()
            state.partial_agg[cache_key] = (current, agg)
        last = self._minute_candle(state, current, t_ms)
        if last is not None:
            agg = last if agg is None else agg.merge(last)
        return None if agg is None else _rebox(agg, open_ms, close_ms)

    def _sum_minutes(
        self, state: _SymbolState, start_ms: int, end_ms: int, t_ms: int, agg: Candle | None
    ) -> Candle | None:
        for open_ms in range(start_ms, end_ms, MINUTE_MS):
            m = self._minute_candle(state, open_ms, t_ms)
            if m is not None:
                agg = m if agg is None else agg.merge(m)
        return agg

    def warm(self, symbol: str, interval: str, open_ms: int, now_ms: int, budget: int) -> tuple[bool, int]:
        """Extend the cached closed-minutes part of an in-progress candle by at most ``budget``
        minutes. Returns (warm, minutes used); streams use it to spread the first computation of
        long candles over several ticks instead of stalling one."""
        minutes = INTERVALS[interval]
        if minutes == 1:
            return True, 0
        state = self._state(symbol)
        current = now_ms // MINUTE_MS * MINUTE_MS
        cache_key = (minutes, open_ms)
        upto, agg = state.partial_agg.get(cache_key, (open_ms, None))
        if upto >= current:
            return True, 0
        stop = min(current, upto + budget * MINUTE_MS)
        agg = self._sum_minutes(state, upto, stop, now_ms, agg)
        state.partial_agg[cache_key] = (stop, agg)
        return stop >= current, (stop - upto) // MINUTE_MS

    # ----------------------------------------------------------------- queries
    def candle(self, symbol: str, interval: str, open_ms: int, now_ms: int) -> Candle | None:
        """The candle of ``interval`` opening at ``open_ms``, as seen at ``now_ms``."""
        self.apply_due(now_ms)
        return self._aggregate(self._state(symbol), INTERVALS[interval], open_ms, now_ms)

    def klines(
        self,
        symbol: str,
        interval: str,
        now_ms: int,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """Binance /klines semantics: open times in [startTime, endTime]; without startTime the
        latest ``limit`` up to endTime (or now); the last may be the open, partial candle."""
        self.apply_due(now_ms)
        state = self._state(symbol)
        info = state.info
        span = INTERVALS[interval] * MINUTE_MS
        first_open = info.onboard_ms // span * span
        last_open = min(now_ms, info.delivery_ms - 1) // span * span
        if end_ms is not None:
            last_open = min(last_open, end_ms // span * span)
        if start_ms is not None:
            lo = max(first_open, -(-start_ms // span) * span)
            hi = min(last_open, lo + (limit - 1) * span)
        else:
            hi = last_open
            lo = max(first_open, hi - (limit - 1) * span)
        out: list[Candle] = []
        minutes = INTERVALS[interval]
        for open_ms in range(lo, hi + 1, span):
            c = self._aggregate(state, minutes, open_ms, now_ms)
            if c is not None:
                out.append(c)
        return out

    def warm_day(self, symbols: Iterable[str], now_ms: int) -> None:
        """Compute and cache the closed minutes and closed hours of each symbol's last 24 hours,
        the costly part of ``rolling_24h`` (~1,400 minutes a symbol the first time).

        Safe to run in a worker thread while the event loop serves streams: it only fills the
        caches of minutes closed at ``now_ms``, which no spike can change any more (a spike lands
        in the current or the next minute), every value it writes is the one the loop would
        compute, and where it reads a cache that the loop may clear (the closed hours) it uses
        ``dict.get``; the caches it may clear itself (minutes, plans) are read with ``get`` too."""
        for symbol in symbols:
            state = self._states.get(symbol)
            if state is None:
                continue
            t = min(now_ms, state.info.delivery_ms - 1)
            current = t // MINUTE_MS * MINUTE_MS
            first = current - (24 * 60 - 1) * MINUTE_MS
            this_hour = current // HOUR_MS * HOUR_MS
            first_full_hour = -(-first // HOUR_MS) * HOUR_MS
            self._sum_minutes(state, first, min(first_full_hour, current), t, None)
            for hour_open in range(first_full_hour, this_hour, HOUR_MS):
                key = (60, hour_open)
                if state.closed_agg.get(key) is not None:  # .get: the loop may clear the dict
                    continue
                agg = self._sum_minutes(state, hour_open, hour_open + HOUR_MS, t, None)
                if agg is not None and len(state.closed_agg) < 20_000:
                    state.closed_agg[key] = _rebox(agg, hour_open, hour_open + HOUR_MS - 1)
            self._sum_minutes(state, max(this_hour, first), current, t, None)

    def rolling_24h(self, symbol: str, now_ms: int) -> Candle | None:
        """The last 24 hours as one candle: the 1,440 one-minute klines whose open time lies in
        (now - 24 h, now], the last one in progress, exactly as ``klines(1m, limit=1440)`` shows
        them. Whole hours come from the cached hourly aggregates, the ragged first hour minute
        by minute, so a ticker costs ~80 lookups once the hours are cached. None: no trading."""
        self.apply_due(now_ms)
        state = self._state(symbol)
        t = min(now_ms, state.info.delivery_ms - 1)
        current = t // MINUTE_MS * MINUTE_MS
        first = current - (24 * 60 - 1) * MINUTE_MS
        first_full_hour = -(-first // HOUR_MS) * HOUR_MS
        agg = self._sum_minutes(state, first, min(first_full_hour, current + MINUTE_MS), t, None)
        for hour_open in range(first_full_hour, current + 1, HOUR_MS):
            part = self._aggregate(state, 60, hour_open, t)
            if part is not None:
                agg = part if agg is None else agg.merge(part)
        if agg is None:
            return None
        opened = max(first, -(-state.info.onboard_ms // MINUTE_MS) * MINUTE_MS)
        return _rebox(agg, opened, t)

    def last_price(self, symbol: str, t_ms: int) -> float:
        state = self._state(symbol)
        info = state.info
        t = min(t_ms, info.delivery_ms - 1)
        open_ms = t // MINUTE_MS * MINUTE_MS
        plan = self._plan(info, open_ms // MINUTE_MS)
        pos = (t - open_ms) / STEP_MS
        k = int(pos)
        p0, p1 = plan.prices[k], plan.prices[k + 1]
        return round(p0 + (p1 - p0) * (pos - k), info.price_precision)

    def funding_rate(self, info: SymbolInfo, t_ms: int) -> float:
        period = t_ms // (8 * HOUR_MS)
        return round(-0.0001 + 0.0004 * _unit(info.key, 201, period) ** 2, 8)

    def open_interest(self, info: SymbolInfo, t_ms: int) -> float:
        """Open contracts at ``t_ms``: about 30 typical hours of quote volume at the reference
        price, wandering within ±10 % along a smooth curve with a knot every 5 minutes (the
        finest period of ``openInterestHist``), so an hour's change reads like a real one's."""
        j, r = divmod(t_ms, OPEN_INTEREST_STEP_MS)
        a, b = _unit(info.key, 203, j), _unit(info.key, 203, j + 1)
        x = a + (b - a) * _smooth(r / OPEN_INTEREST_STEP_MS)
        contracts = 30.0 * info.hourly_quote / info.ref_price * (0.9 + 0.2 * x)
        return round(contracts, info.quantity_precision)

    def basis(self, info: SymbolInfo, t_ms: int) -> float:
        return (_unit(info.key, 202, t_ms // MINUTE_MS) - 0.5) * 0.0006

    # ----------------------------------------------------------------- spikes
    def trigger_spike(
        self, symbol: str, multiple: float, now_ms: int, *, min_quote_volume: float = 0.0
    ) -> SpikeInfo:
        """Make the current hour's quote volume reach >= ``multiple`` x the previous closed hour
        (and >= ``min_quote_volume``), arriving over a few seconds from ``now_ms``."""
        self.apply_due(now_ms)
        return self._spike(symbol, multiple, now_ms, min_quote_volume)

    def _spike(self, symbol: str, multiple: float, now_ms: int, min_quote_volume: float) -> SpikeInfo:
        state = self._state(symbol)
        info = state.info
        if not info.trades_at(now_ms):
            raise ValueError(f"{symbol} is not trading")
        minute_open = now_ms // MINUTE_MS * MINUTE_MS
        remaining = minute_open + MINUTE_MS - now_ms
        if remaining >= 1500:
            start, duration = now_ms, min(SPIKE_RAMP_MS, remaining - 400)
        else:  # too late in this minute: it lands at the start of the next one
            minute_open += MINUTE_MS
            start, duration = minute_open, SPIKE_RAMP_MS
        hour_open = minute_open // HOUR_MS * HOUR_MS
        prev = self._aggregate(state, 60, hour_open - HOUR_MS, hour_open)
        prev_q = prev.q if prev is not None else 0.0
        before = 0.0
        for open_ms in range(hour_open, minute_open, MINUTE_MS):
            m = self._minute_candle(state, open_ms, open_ms + MINUTE_MS, cache=False)
            if m is not None:
                before += m.q
        this_minute = self._minute_candle(state, minute_open, start, cache=False)
        if this_minute is not None:
            before += this_minute.q
        target = max(multiple * prev_q, min_quote_volume) * 1.02
        plan = self._plan(info, minute_open // MINUTE_MS)
        extra = max(target - before, 0.5 * plan.cum_quote[-1])
        spike = Spike(minute_open, start, duration, extra, plan.prices[-1])
        state.spikes.setdefault(minute_open, []).append(spike)
        # drop cached aggregates that may include this minute
        state.closed.pop(minute_open, None)
        state.partial_agg.clear()
        for key in [k for k in state.closed_agg if k[1] <= minute_open < k[1] + k[0] * MINUTE_MS]:
            del state.closed_agg[key]
        return SpikeInfo(symbol, minute_open, start, start + duration, extra, prev_q, before + extra)

    def schedule_spike(
        self, symbol: str, multiple: float, at_ms: int, *, min_quote_volume: float = 0.0
    ) -> None:
        self._state(symbol)
        bisect.insort(
            self._pending, _Pending(at_ms, symbol, multiple, min_quote_volume), key=lambda p: p.at_ms
        )

    def apply_due(self, now_ms: int) -> list[SpikeInfo]:
        """Fire the scheduled spikes whose time has come (at their own scheduled time)."""
        fired: list[SpikeInfo] = []
        while self._pending and self._pending[0].at_ms <= now_ms:
            p = self._pending.pop(0)
            try:
                fired.append(self._spike(p.symbol, p.multiple, p.at_ms, p.min_quote_volume))
            except (ValueError, UnknownSymbol):
                continue
        return fired

    @property
    def pending_spikes(self) -> int:
        return len(self._pending)


def _rebox(c: Candle, open_ms: int, close_ms: int) -> Candle:
    return Candle(open_ms, close_ms, c.o, c.h, c.l, c.c, c.v, c.q, c.n, c.bv, c.bq, c.first_id, c.last_id)


__all__ = [
    "INTERVALS",
    "PERPETUAL_DELIVERY_MS",
    "Candle",
    "Market",
    "SpikeInfo",
    "UnknownSymbol",
]
