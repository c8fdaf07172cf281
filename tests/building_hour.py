"""An hour whose volume builds up over many kline updates, as the exchange streams it: five
partial updates and the close for every minute, after a flat previous hour of $100k a minute.

The detector tests that feed the rule such an hour (own thresholds, early warning) share these
frames; each says how its hour builds up (`per_minute`) and what the price does (`price`)."""

from __future__ import annotations

from collections.abc import Callable

from core.alerts import Alert
from ingest.detector import Fired, SpikeDetector
from ingest.parsers import Kline

MIN = 60_000
HOUR = 3_600_000
H0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR  # the previous hour
H1 = H0 + HOUR  # the hour that builds up
SYMBOL = "SOLUSDT"
PREVIOUS_PER_MINUTE = 100_000.0

Price = Callable[[int], float]  # the price at a frame's event time


def flat(event_ms: int) -> float:
    return 20.0


def kline(open_ms: int, q: float, *, closed: bool, event_ms: int, price: Price = flat) -> Kline:
    close = price(event_ms)
    return Kline(
        symbol=SYMBOL,
        interval="1m",
        open_time_ms=open_ms,
        close_time_ms=open_ms + MIN - 1,
        open=20.0,
        high=20.0,
        low=20.0,
        close=close,
        volume=q / 20.0,
        quote_volume=q,
        trades=10,
        taker_buy_volume=0.0,
        taker_buy_quote=0.0,
        closed=closed,
        event_time_ms=event_ms,
    )


def previous_hour(price: Price = flat) -> list[Kline]:
    """The previous hour's 60 closed minutes."""
    return [
        kline(H0 + m * MIN, PREVIOUS_PER_MINUTE, closed=True, event_ms=H0 + (m + 1) * MIN + 50, price=price)
        for m in range(60)
    ]


def build_up(
    per_minute: Callable[[int], float], first: int = 0, last: int = 60, *, price: Price = flat
) -> list[Kline]:
    """Minutes `first`..`last - 1` of the hour: five partial updates and a close each."""
    frames = []
    for m in range(first, last):
        open_ms = H1 + m * MIN
        for k in range(1, 6):
            q = per_minute(m) * k / 6
            frames.append(kline(open_ms, q, closed=False, event_ms=open_ms + k * 10_000, price=price))
        frames.append(kline(open_ms, per_minute(m), closed=True, event_ms=open_ms + MIN + 50, price=price))
    return frames


def run(detector: SpikeDetector, frames: list[Kline]) -> list[Alert]:
    """Every alert the detector records while it is fed the frames in order."""
    alerts: list[Alert] = []
    for frame in frames:
        alerts.extend(detector.on_kline(frame))
    return alerts


def fired(alerts: list[Alert]) -> list[Fired]:
    """The rows as `db.alerts.fired_since` gives them back to a restarted detector."""
    return [
        Fired(
            a.symbol,
            a.hour,
            a.alert_type,
            a.detected_at,
            a.previous_volume,
            a.ratio,
            a.current_volume,
            a.level is not None,
            a.projected_volume or 0.0,
        )
        for a in alerts
    ]
