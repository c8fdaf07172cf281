"""The what-if and the track record on a month of data: how long `db.what_if.estimate` (one
user's thresholds) and `webapp.api.record.build_record` (all four groupings) take.

    .venv/bin/python -m bench.outcomes_queries [--symbols 400] [--days 30] [--spikes-per-day 1]

A throw-away database holds `--days` days of hourly candles of `--symbols` symbols (written into
`candles_1h` directly: both queries read only the roll-up) with a spike of 4–8× the previous hour
`--spikes-per-day` times a day per symbol, each with its SPIKE row and stored outcome. Each query
runs once cold (first after the seed) and then 10 times; the table shows the cold time and the
median and worst of the 10 (target: under 1 s).

Environment: VOLSPIKE_BENCH_PG (see bench/webapp_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.webapp_server import bench_database
from core.i18n import create_i18n
from db.pool import create_pool
from db.what_if import estimate
from webapp.api.record import build_record

RUNS = 10
DEFAULTS = (3.0, 3e6)  # the service's spike multiple and minimum volume


async def seed(pool: asyncpg.Pool, now: datetime, symbols: int, days: int, spikes_per_day: int) -> int:
    rng = random.Random(5)
    end = now.replace(minute=0, second=0, microsecond=0)
    hours = days * 24
    candles = []
    alerts = []
    for s in range(symbols):
        symbol = f"S{s}USDT"
        base = 1e6 * rng.lognormvariate(1.0, 1.2)
        spikes = set(rng.sample(range(1, hours), spikes_per_day * days))
        for i in range(hours):
            t = end - timedelta(hours=hours - i)
            volume = base * rng.uniform(0.7, 1.3) * (rng.uniform(4, 8) if i in spikes else 1)
            candles.append((symbol, t, 1.0, 1.1, 0.9, 1.0, volume, volume, 100, volume / 2, volume / 2))
            if i in spikes:
                alerts.append((symbol, t, volume, volume / 5))
    await pool.copy_records_to_table("candles_1h", records=candles)
    async with pool.acquire() as conn:
        ids = [
            await conn.fetchval(
                "INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume,"
                " previous_volume, volume_ratio, price)"
                " VALUES ($1, 'S', 'SPIKE', $2::timestamptz, $2::timestamptz + interval '10 minutes',"
                " $3, $4, 5, 1) RETURNING id",
                *row,
            )
            for row in alerts
        ]
    await pool.copy_records_to_table(
        "alert_outcomes",
        records=[
            (
                i,
                240,
                rng.uniform(0.3, 0.7),
                1,
                "taker",
                *(rng.gauss(0, sd) for sd in (1, 2, 3)),
                0.0,
                0.0,
                0.0,
                1.0,
                -1.0,
                1.0,
                -1.0,
                now,
            )
            for i in ids
        ],
    )
    await pool.execute("ANALYZE")
    return len(ids)


async def timed(run: object) -> float:
    start = time.perf_counter()
    await run  # type: ignore[misc]
    return (time.perf_counter() - start) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--spikes-per-day", type=int, default=1)
    args = parser.parse_args()
    now = datetime.now(UTC)
    async with bench_database() as url:
        pool = await create_pool(url, min_size=1, max_size=5)
        try:
            spikes = await seed(pool, now, args.symbols, args.days, args.spikes_per_day)
            i18n = create_i18n()
            cases = {
                "what-if 3× $3M": lambda: estimate(pool, now, 3.0, 3e6, DEFAULTS),
                "what-if 5× $10M": lambda: estimate(pool, now, 5.0, 1e7, DEFAULTS),
                "what-if 10× $100M": lambda: estimate(pool, now, 10.0, 1e8, DEFAULTS),
                "record 30 days": lambda: build_record(pool, now, 30, i18n, "en"),
                "record 90 days": lambda: build_record(pool, now, 90, i18n, "en"),
            }
            rows = args.symbols * args.days * 24
            print(f"{rows:,} hourly candles, {spikes:,} SPIKEs with outcomes")
            print(f"{'query':<18} {'cold ms':>8} {'median ms':>10} {'max ms':>8}")
            for name, case in cases.items():
                cold = await timed(case())
                warm = [await timed(case()) for _ in range(RUNS)]
                print(f"{name:<18} {cold:>8.1f} {statistics.median(warm):>10.1f} {max(warm):>8.1f}")
        finally:
            await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
