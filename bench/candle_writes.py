"""Candle write throughput: ~200k closed 1m candles through CandleWriter (COPY, or COPY into
staging + upsert) into a throwaway database `volspike_bench`, created and dropped by this script.

Patterns: a caller that waits for every flush of 500 or 5,000 rows (the per-statement cost),
the same rows replayed (the upsert path), one batch, and the live path: `run()` flushing by
itself while a producer adds minutes as fast as it can; rows that arrive during a flush go
into the next one, so batches grow with the load.

    .venv/bin/python -m bench.candle_writes [--rows 200000] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime

import asyncpg

from bench.rows import Row, Section
from db.migrate import migrate
from db.pool import create_pool
from ingest.candles import CandleWriter
from ingest.parsers import Kline

BENCH_DB = "volspike_bench"
PG_ADMIN = os.environ.get("VOLSPIKE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LIVE = "run() under load (500 rows or 1 s)"
START_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def candles(rows: int, symbols: int = 600) -> list[Kline]:
    """`rows` closed minutes, `symbols` symbols side by side, as a live stream delivers them."""
    out = []
    for i in range(rows):
        minute, sym = divmod(i, symbols)
        t = START_MS + minute * 60_000
        p = 100.0 + (i % 97) / 10
        out.append(Kline(f"S{sym:03d}USDT", "1m", t, t + 59_999, p, p + 1, p - 1, p, 12.5, 12.5 * p, 42, 6.0,
                         6.0 * p, True, t + 60_000))  # fmt: skip
    return out


async def timed(writer: CandleWriter, klines: list[Kline], batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(klines), batch):
        for k in klines[i : i + batch]:
            writer.add(k)
        await writer.flush()
    return time.perf_counter() - started


async def sustained(writer: CandleWriter, klines: list[Kline], per_minute: int = 600) -> float:
    """The live path: `run()` flushes on its own (500 rows or 1 s) while a producer adds one
    minute of `per_minute` closed klines at a time as fast as it can (a backfill, a replay, a
    reconnect catching up). Time until every row is stored."""
    started = time.perf_counter()
    task = asyncio.create_task(writer.run())
    try:
        for i in range(0, len(klines), per_minute):
            for k in klines[i : i + per_minute]:
                writer.add(k)
            await asyncio.sleep(0)
        await writer.flush()  # after the flush in progress (the lock): whatever is left
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return time.perf_counter() - started


async def measure(rows: int, admin_url: str = PG_ADMIN) -> tuple[list[tuple[str, float]], int]:
    """[(write pattern, seconds)] for `rows` candles, and the rows stored after the last run."""
    url = f"{admin_url.rsplit('/', 1)[0]}/{BENCH_DB}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        await migrate(url)  # creates the database
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            klines = candles(rows)
            results = []
            patterns = (
                ("500 rows, wait for each flush", 500),
                ("5,000 rows, wait for each flush", 5_000),
                ("replayed: same rows again, 5,000", 5_000),
                ("one batch", rows),
            )
            for label, batch in patterns:
                if not label.startswith("replayed"):
                    await pool.execute("TRUNCATE candles_1m")
                seconds = await timed(CandleWriter(pool, max_buffered=rows), klines, batch)
                results.append((label, seconds))
            await pool.execute("TRUNCATE candles_1m")
            seconds = await sustained(CandleWriter(pool, max_buffered=rows), klines)
            results.append((LIVE, seconds))
            stored: int = await pool.fetchval("SELECT count(*) FROM candles_1m")
        finally:
            await pool.close()
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", BENCH_DB
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        await admin.close()
    return results, stored


async def rows(count: int = 200_000) -> Section:
    """`volspike bench`'s row: the live path's candle write rate (`run()` under load)."""
    results, stored = await measure(count)
    rate = count / dict(results)[LIVE]
    waited = count / dict(results)["5,000 rows, wait for each flush"]
    return Section(
        [
            Row(
                f"candle write rate, run() under load ({count:,} rows)",
                rate,
                "rows/s",
                ">= 100,000",
                f"waiting for each 5,000-row flush: {waited:,.0f} rows/s; {stored:,} stored",
                rate >= 100_000 and stored == count,
            )
        ]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--admin-url", default=PG_ADMIN)
    args = parser.parse_args()
    results, stored = await measure(args.rows, args.admin_url)
    print(f"{args.rows:,} closed 1m candles, 600 symbols; {stored:,} rows stored after the last run")
    print(f"{'write pattern':<36} {'seconds':>8} {'rows/s':>10}")
    for label, seconds in results:
        print(f"{label:<36} {seconds:>8.2f} {args.rows / seconds:>10,.0f}")


if __name__ == "__main__":
    asyncio.run(main())
