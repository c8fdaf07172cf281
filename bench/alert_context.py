"""The alert context's one query per alert (db/alert_context.py) on a month of data: `symbols`
symbols with 30 days of hourly candles and funding snapshots every 5 minutes, in a throwaway
database `volspike_bench_context`, created and dropped by this script.

    .venv/bin/python -m bench.alert_context [--symbols 50] [--alerts 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.detection_latency import percentile
from bench.rows import Row, Section
from db.alert_context import baseline
from db.migrate import migrate
from db.pool import create_pool

BENCH_DB = "volspike_bench_context"
PG_ADMIN = os.environ.get("VOLSPIKE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2026, 3, 2, 14, 7, 30, tzinfo=UTC)
HOUR = NOW.replace(minute=0, second=0)
DAYS = 30


async def seed(pool: asyncpg.Pool, symbols: list[str]) -> None:
    await pool.execute(
        "SELECT ensure_candle_partitions($1::date, $2::date)",
        (NOW - timedelta(days=DAYS + 1)).date(),
        NOW.date(),
    )
    day_ago = NOW.replace(second=0) - timedelta(days=1)
    for s in symbols:
        await pool.executemany(
            "INSERT INTO candles_1m VALUES ($1, $2, 1, 1, 1, 1, 1, 1, 1, 0, 0)",
            [(s, day_ago - timedelta(minutes=m)) for m in range(60)],
        )
        await pool.executemany(
            """INSERT INTO candles_1h VALUES ($1, $2, 1, 1, 1, 1, 1, $3, 1, 0, 0)
               ON CONFLICT (symbol, open_time) DO UPDATE SET quote_volume = EXCLUDED.quote_volume""",
            [(s, HOUR - timedelta(hours=h), 1e6 + h) for h in range(1, DAYS * 24 + 1)],
        )
        await pool.executemany(
            "INSERT INTO mark_snapshots (symbol, ts, mark_price, funding_rate) VALUES ($1, $2, 1, $3)",
            [(s, NOW - timedelta(minutes=5 * k), (k % 40 - 20) * 1e-6) for k in range(1, DAYS * 288)],
        )
    await pool.execute("ANALYZE")


async def measure(symbols: int, alerts: int, admin_url: str = PG_ADMIN) -> tuple[list[float], int]:
    """Milliseconds of `alerts` context queries, and the funding snapshots stored."""
    url = f"{admin_url.rsplit('/', 1)[0]}/{BENCH_DB}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        await migrate(url)
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            names = [f"S{i:03d}USDT" for i in range(symbols)]
            await seed(pool, names)
            times = []
            for i in range(alerts):
                started = time.perf_counter()
                await baseline(pool, names[i % symbols], HOUR, NOW, 2e6, 1e-6)
                times.append((time.perf_counter() - started) * 1000)
            snapshots: int = await pool.fetchval("SELECT count(*) FROM mark_snapshots")
        finally:
            await pool.close()
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", BENCH_DB
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        await admin.close()
    return times, snapshots


async def rows(symbols: int = 50, alerts: int = 200) -> Section:
    """`volspike bench`'s row: the context query's p95 on a month of data."""
    times, snapshots = await measure(symbols, alerts)
    p95 = percentile(times, 0.95)
    return Section(
        [
            Row(
                f"alert context query p95, 30 days x {symbols} symbols",
                p95,
                "ms",
                "< 100 (bounded at 500)",
                f"median {percentile(times, 0.5):.1f} ms over {alerts} alerts; "
                f"{snapshots:,} funding snapshots",
                p95 < 100,
            )
        ],
        {"alert context query": times},
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--alerts", type=int, default=200)
    args = parser.parse_args()
    times, snapshots = await measure(args.symbols, args.alerts)
    print(f"{args.symbols} symbols x {DAYS} days ({snapshots:,} funding snapshots), {args.alerts} alerts")
    median, p95 = percentile(times, 0.5), percentile(times, 0.95)
    print(f"context query ms: median {median:.2f}, p95 {p95:.2f}, max {max(times):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
