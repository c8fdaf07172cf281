"""What the price did after a SPIKE, from stored 1-minute candles: a pure function of the alert
and the candles, so the job (ingest.outcomes) only fetches and stores.

- The move at a horizon (+15 min, +1 h, +4 h) runs from the alert's price at its detection time
  to the close of the 1m candle that contains the horizon's moment (detected 14:07:23, +1 h:
  the close of 15:07). A horizon whose candle is missing is unknown, never zero.
- The direction is the hour's taker imbalance: taker-buy quote volume over quote volume (kline
  `Q` / `q`) summed over the hour's minutes up to the alert's minute; above half is up, below
  is down. Exactly half (or no volume) falls back to the hour's price move up to the alert
  (the alert's price against the hour's first open), and the outcome says so (`price`).
- MFE / MAE: the largest favourable and adverse move in that direction within 4 h, over the
  highs and lows of the minutes after the alert's minute up to the +4 h candle; 0 when the
  price never went that way. Unknown when any of those 240 minutes is missing.
- Against BTC: BTC's move over the same window (from the open of its candle in the alert's
  minute to the close of its candle at the horizon) is subtracted; for MFE / MAE the same is
  done minute by minute on closes (both series' closes at the same minute). Unknown when BTC's
  candles are missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

MINUTE = timedelta(minutes=1)
HORIZONS: tuple[int, ...] = (15, 60, 240)  # minutes
WINDOW = HORIZONS[-1]
BTC = "BTCUSDT"
DirectionSource = Literal["taker", "price"]


@dataclass(frozen=True, slots=True)
class Minute:
    """One stored 1m candle, as the outcome needs it."""

    open: float
    high: float
    low: float
    close: float
    quote_volume: float
    taker_buy_quote: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """Percent moves (1.5 is +1.5 %); None is unknown. `horizon_minutes`: the longest horizon
    computed; figures of longer horizons are not computed yet (None as well)."""

    horizon_minutes: int
    taker_share: float | None
    direction: int | None  # +1 up, -1 down
    direction_source: DirectionSource | None
    changes: tuple[float | None, float | None, float | None]  # +15 min, +1 h, +4 h
    btc_changes: tuple[float | None, float | None, float | None]
    mfe: float | None
    mae: float | None
    rel_mfe: float | None
    rel_mae: float | None

    def change(self, minutes: int) -> float | None:
        return self.changes[HORIZONS.index(minutes)]

    def relative(self, minutes: int) -> float | None:
        """The move at `minutes` with BTC's subtracted."""
        i = HORIZONS.index(minutes)
        own, btc = self.changes[i], self.btc_changes[i]
        return None if own is None or btc is None else own - btc


def minute_floor(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def horizon_candle(detected_at: datetime, minutes: int) -> datetime:
    """Open time of the 1m candle whose close is the move's end at `minutes`."""
    return minute_floor(detected_at + timedelta(minutes=minutes))


def ready_at(detected_at: datetime, minutes: int) -> datetime:
    """When the horizon's candle has closed."""
    return horizon_candle(detected_at, minutes) + MINUTE


def passed_horizon(detected_at: datetime, now: datetime, grace: timedelta) -> int | None:
    """The longest horizon whose candle closed at least `grace` before `now`; None: none yet."""
    passed = [m for m in HORIZONS if ready_at(detected_at, m) + grace <= now]
    return passed[-1] if passed else None


def _pct(end: float, start: float) -> float:
    return (end / start - 1.0) * 100.0


def _direction(
    hour: datetime, alert_minute: datetime, price: float, minutes: Mapping[datetime, Minute]
) -> tuple[float | None, int | None, DirectionSource | None]:
    own = [c for t, c in minutes.items() if hour <= t <= alert_minute]
    quote = sum(c.quote_volume for c in own)
    share = sum(c.taker_buy_quote for c in own) / quote if quote > 0 else None
    if share is not None and share != 0.5:
        return share, (1 if share > 0.5 else -1), "taker"
    first = minutes.get(hour)
    if first is not None and price != first.open:
        return share, (1 if price > first.open else -1), "price"
    return share, None, None


def compute_outcome(
    *,
    detected_at: datetime,
    hour: datetime,
    price: float,
    horizon_minutes: int,
    minutes: Mapping[datetime, Minute],
    btc: Mapping[datetime, Minute],
) -> Outcome:
    """The outcome up to `horizon_minutes` (15, 60 or 240) of an alert at `price`, detected at
    `detected_at` in `hour`, from the symbol's and BTC's stored minutes keyed by open time."""
    alert_minute = minute_floor(detected_at)
    share, direction, source = _direction(hour, alert_minute, price, minutes)
    btc_start = btc.get(alert_minute)
    changes: list[float | None] = []
    btc_changes: list[float | None] = []
    for m in HORIZONS:
        if m > horizon_minutes:
            changes.append(None)
            btc_changes.append(None)
            continue
        end = minutes.get(horizon_candle(detected_at, m))
        changes.append(None if end is None else _pct(end.close, price))
        btc_end = btc.get(horizon_candle(detected_at, m))
        btc_changes.append(
            None if btc_start is None or btc_end is None else _pct(btc_end.close, btc_start.open)
        )
    mfe = mae = rel_mfe = rel_mae = None
    if horizon_minutes >= WINDOW and direction is not None:
        window = [alert_minute + MINUTE * i for i in range(1, WINDOW + 1)]
        own = [minutes.get(t) for t in window]
        if all(c is not None for c in own):
            candles = [c for c in own if c is not None]
            up = max(_pct(c.high, price) for c in candles)
            down = min(_pct(c.low, price) for c in candles)
            favourable, adverse = (up, down) if direction > 0 else (-down, -up)
            mfe, mae = max(favourable, 0.0), min(adverse, 0.0)
            theirs = [btc.get(t) for t in window]
            if btc_start is not None and all(c is not None for c in theirs):
                relative = [
                    direction * (_pct(c.close, price) - _pct(b.close, btc_start.open))
                    for c, b in zip(candles, theirs, strict=True)
                    if b is not None
                ]
                rel_mfe, rel_mae = max(max(relative), 0.0), min(min(relative), 0.0)
    return Outcome(
        horizon_minutes=horizon_minutes,
        taker_share=share,
        direction=direction,
        direction_source=source,
        changes=(changes[0], changes[1], changes[2]),
        btc_changes=(btc_changes[0], btc_changes[1], btc_changes[2]),
        mfe=mfe,
        mae=mae,
        rel_mfe=rel_mfe,
        rel_mae=rel_mae,
    )
