"""Mini App API latency: `/api/candles` (1h, 500 candles) and `/udf/history` under concurrent clients.

    .venv/bin/python -m bench.api_latency [--clients 100] [--requests 3000]

The real webapp serves in a child process against a throw-away database holding 500 hours of
1m candles of one symbol (30,000 rows, aggregated to 1h in SQL on every /api/candles call).
`--clients` concurrent keep-alive clients send `--requests` requests per case; the table gives
p50/p99 latency seen by the clients (target p99 < 30 ms) and the throughput. `/udf/history` is
measured twice: the same query (answered from the Redis cache after the first) and a query
that changes every request (always computed).
Environment: VOLSPIKE_BENCH_PG, VOLSPIKE_BENCH_REDIS (see bench/webapp_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from bench.detection_latency import percentile
from bench.webapp_server import bench_database, bench_webapp
from db.partitions import ensure_partitions

HOURS = 500
SYMBOL = "BTCUSDT"


async def seed(database_url: str) -> int:
    """500 hours of minutes ending at the current hour; the `to` of the requests (unix s)."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=HOURS)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO symbols (symbol, base_asset, quote_asset, contract_type, status) "
            "VALUES ($1, 'BTC', 'USDT', 'PERPETUAL', 'TRADING')",
            SYMBOL,
        )
        await ensure_partitions(conn, start.date(), end.date())
        rows = []
        for i in range(HOURS * 60):
            price = 50_000 + (i % 977)
            rows.append(
                (
                    SYMBOL,
                    start + timedelta(minutes=i),
                    price,
                    price + 5,
                    price - 5,
                    price + 1,
                    10.0,
                    5e5,
                    50,
                    5.0,
                    2.5e5,
                )
            )
        await conn.copy_records_to_table("candles_1m", records=rows)
    finally:
        await conn.close()
    return int(end.timestamp())


async def load(
    base: str, paths: list[str] | itertools.cycle[str], clients: int, requests: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    source = iter(paths) if isinstance(paths, list) else paths
    remaining = requests
    connector = aiohttp.TCPConnector(limit=clients)

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            path = next(source)
            started = time.perf_counter()
            async with session.get(base + path) as response:
                await response.read()
                assert response.status == 200, (response.status, path)
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(3):  # warm up each connection path once
            async with session.get(base + next(source)) as response:
                await response.read()

        async def warm() -> None:
            async with session.get(base + next(source)) as response:
                await response.read()

        # Open all `clients` keep-alive connections before measuring: the figure is the steady
        # state of 100 clients, not 100 TCP handshakes landing in the first milliseconds.
        await asyncio.gather(*(warm() for _ in range(clients)))
        began = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - began
    return latencies, elapsed


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    async with bench_database() as database_url:
        to = await seed(database_url)
        frm = to - HOURS * 3600
        async with bench_webapp(database_url) as app:
            cases = {
                "/api/candles 1h x500": itertools.cycle(
                    [f"/api/candles?symbol={SYMBOL}&interval=1h&from={frm}&to={to}&limit=500"]
                ),
                "/udf/history 60 x500 (cached)": itertools.cycle(
                    [f"/udf/history?symbol={SYMBOL}&resolution=60&from={frm}&to={to}"]
                ),
                "/udf/history 60 x500 (uncached)": (
                    f"/udf/history?symbol={SYMBOL}&resolution=60&from={frm}&to={to}&countback=500&n={n}"
                    for n in itertools.count()
                ),
            }
            print(
                f"{args.clients} concurrent clients, {args.requests} requests per case, webapp pid {app.pid}"
            )
            print(f"{'case':34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>8}  target p99 < 30 ms")
            for name, paths in cases.items():
                latencies, elapsed = await load(app.url, paths, args.clients, args.requests)  # type: ignore[arg-type]
                p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
                worst, rate = max(latencies) * 1000, len(latencies) / elapsed
                verdict = "ok" if p99 < 30 else "MISSED"
                print(f"{name:34} {p50:8.1f} {p99:8.1f} {worst:8.1f} {rate:8.0f}  {verdict}")
    return 0


async def rows(clients: int = 100, requests: int = 3000) -> Any:
    """`volspike bench`'s rows (a bench.rows.Section): each case's p99 under `clients` clients."""
    from bench.rows import Row, Section

    section = Section()
    async with bench_database() as database_url:
        to = await seed(database_url)
        frm = to - HOURS * 3600
        async with bench_webapp(database_url) as app:
            cases = {
                "/api/candles 1h x500": itertools.cycle(
                    [f"/api/candles?symbol={SYMBOL}&interval=1h&from={frm}&to={to}&limit=500"]
                ),
                "/udf/history 60 x500 (uncached)": (
                    f"/udf/history?symbol={SYMBOL}&resolution=60&from={frm}&to={to}&countback=500&n={n}"
                    for n in itertools.count()
                ),
            }
            for name, paths in cases.items():
                latencies, elapsed = await load(app.url, paths, clients, requests)  # type: ignore[arg-type]
                ms = [t * 1000 for t in latencies]
                p99 = percentile(ms, 0.99)
                also = f"p50 {percentile(ms, 0.5):.1f} ms, {len(ms) / elapsed:,.0f} req/s"
                section.rows.append(Row(f"{name} p99, {clients} clients", p99, "ms", "< 30", also, p99 < 30))
                section.samples[name] = ms
    return section


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
