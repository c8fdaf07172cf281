"""A SPIKE and the minutes around it, written to the real test database, whose outcome is
known by hand (the figures are in `SCENARIO`'s docstring)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from core.alerts import Alert, AlertType
from core.outcomes import Outcome
from db import alert_outcomes
from db.alerts import insert_alert
from db.partitions import ensure_partitions

HOUR = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DETECTED = HOUR + timedelta(minutes=20, seconds=30)  # the alert's minute is 10:20
MINUTE = timedelta(minutes=1)


@dataclass
class Scenario:
    """Flat minutes at 100 (high 100.5, low 99.5) with these exceptions, BTC flat at 50,000:

    - the hour's minutes 10:00..10:20 trade 1000 quote each, `taker` of it taker-bought;
    - 10:35 (+15 min) closes 102, 11:20 (+1 h) closes 97, 14:20 (+4 h) closes 105;
    - 12:00 reaches a high of 108 and 13:00 a low of 95;
    - BTC closes 50,500 at 10:35 (+1 %), 49,000 at 11:20 (-2 %), 51,000 at 14:20 (+2 %), and
      52,000 at 12:30 (+4 %, when our close is flat).

    Up (taker 700): +2 / -3 / +5 %, BTC +1 / -2 / +2 %, MFE +8, MAE -5, against BTC the closes
    run 0 except +1 (10:35), -1 (11:20), +3 (14:20), -4 (12:30): MFE +3, MAE -4.
    """

    symbol: str = "XUSDT"
    price: float = 100.0
    taker: float = 700.0
    hour_open: float = 100.0
    skip: set[datetime] = field(default_factory=set)
    skip_btc: set[datetime] = field(default_factory=set)


def _minute(symbol: str, t: datetime, o: float, h: float, lo: float, c: float, q: float, tq: float) -> tuple:
    return (symbol, t, o, h, lo, c, q / o, q, 10, tq / o, tq)


async def write(pool: asyncpg.Pool, s: Scenario, *, detected: datetime = DETECTED) -> int:
    """The minutes of `s` and its SPIKE; the alert's id."""
    hour = detected.replace(minute=0, second=0, microsecond=0)
    shift = hour - HOUR
    await ensure_partitions(pool, hour.date() - timedelta(days=1), (hour + timedelta(hours=6)).date())
    closes = {
        HOUR + timedelta(minutes=35): 102.0,
        HOUR + timedelta(hours=1, minutes=20): 97.0,
        HOUR + timedelta(hours=4, minutes=20): 105.0,
    }
    highs = {HOUR + timedelta(hours=2): 108.0}
    lows = {HOUR + timedelta(hours=3): 95.0}
    btc_closes = {
        HOUR + timedelta(minutes=35): 50_500.0,
        HOUR + timedelta(hours=1, minutes=20): 49_000.0,
        HOUR + timedelta(hours=4, minutes=20): 51_000.0,
        HOUR + timedelta(hours=2, minutes=30): 52_000.0,
    }
    rows = []
    t = HOUR
    while t <= HOUR + timedelta(hours=4, minutes=30):
        own_open = s.hour_open if t == HOUR else 100.0
        c = closes.get(t, 100.0)
        quote, taker = (1000.0, s.taker) if t <= HOUR + timedelta(minutes=20) else (500.0, 250.0)
        if t not in s.skip:
            rows.append(
                _minute(s.symbol, t + shift, own_open, highs.get(t, max(c, own_open) + 0.5),
                        lows.get(t, min(c, own_open) - 0.5), c, quote, taker)
            )  # fmt: skip
        if t not in s.skip_btc and s.symbol != "BTCUSDT":
            b = btc_closes.get(t, 50_000.0)
            rows.append(
                _minute("BTCUSDT", t + shift, 50_000.0, max(b, 50_000.0), min(b, 50_000.0), b, 1e6, 5e5)
            )
        t += MINUTE
    await pool.executemany(
        "INSERT INTO candles_1m VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
        rows,
    )
    alert_id = await insert_alert(
        pool,
        Alert(
            symbol=s.symbol,
            asset=s.symbol.removesuffix("USDT"),
            alert_type=AlertType.SPIKE,
            hour=hour,
            detected_at=detected,
            current_volume=21_000_000.0,
            previous_volume=6_000_000.0,
            ratio=3.5,
            price=s.price,
            funding_rate=0.0001,
        ),
    )
    assert alert_id is not None
    return alert_id


async def seed_track_record(
    pool: asyncpg.Pool, now: datetime, count: int = 120, *, seed: int = 7
) -> list[int]:
    """`count` SPIKEs over the last 30 days with stored outcomes, deterministic and varied: ratios
    3×–20×, hour volumes $3M–$2B, taker shares 30–70 %, moves that widen with the horizon and
    lean with the takers; every 15th has an unknown +4 h (missing candles). Their ids."""
    rng = random.Random(seed)
    assets = ["BTC", "ETH", "SOL", "DOGE", "XRP", "PEPE", "WIF", "SUI", "AVAX", "LINK", "ARB", "OP"]
    ids = []
    for i in range(count):
        detected = now - timedelta(hours=5) - timedelta(minutes=rng.randrange(0, 30 * 24 * 60 - 300))
        ratio = min(3.0 * rng.lognormvariate(0.3, 0.6), 40.0)
        ratio = max(ratio, 3.0)
        volume = 3e6 * rng.lognormvariate(2.0, 1.6)
        taker = min(max(rng.gauss(0.52, 0.08), 0.3), 0.75)
        lean = (taker - 0.5) * 4
        changes = tuple(rng.gauss(lean * k, sd) for k, sd in ((0.3, 0.9), (0.6, 1.8), (1.0, 3.2)))
        asset = assets[i % len(assets)]
        alert_id = await insert_alert(
            pool,
            Alert(
                symbol=f"{asset}{i}USDT",
                asset=asset,
                alert_type=AlertType.SPIKE,
                hour=detected.replace(minute=0, second=0, microsecond=0),
                detected_at=detected,
                current_volume=volume,
                previous_volume=volume / ratio,
                ratio=ratio,
                price=1.0 + i,
                funding_rate=0.0001,
            ),
        )
        assert alert_id is not None
        btc = tuple(rng.gauss(0, sd / 3) for sd in (0.9, 1.8, 3.2))
        last = None if i % 15 == 0 else changes[2]
        peak = max(abs(c) for c in changes) + rng.random()
        await alert_outcomes.store(
            pool,
            alert_id,
            Outcome(
                horizon_minutes=240,
                taker_share=taker,
                direction=1 if taker >= 0.5 else -1,
                direction_source="taker",
                changes=(changes[0], changes[1], last),
                btc_changes=btc,
                mfe=None if last is None else peak,
                mae=None if last is None else -peak / 2,
                rel_mfe=None,
                rel_mae=None,
            ),
            now,
        )
        ids.append(alert_id)
    return ids
