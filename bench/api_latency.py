"""Mini App API latency: `/api/candles` (1h, 500 candles) and `/udf/history` (60, 500 bars).

    .venv/bin/python -m bench.api_latency [--clients 100] [--rate 1] [--seconds 20] [--workers 1]

The real webapp serves in a child process (plus `--workers - 1` more on the same port, as
`WEBAPP_WORKERS` does) against a throw-away database holding 500 hours of 1m candles of one
symbol (30,000 minutes, rolled up into 500 hourly rows). The load generator runs in this
process. Two kinds of row:

- **latency** (the target, p99 < 30 ms): `--clients` traders' charts, each asking on its own
  schedule with Poisson arrivals at `--rate` requests per second (an open loop: a request is
  sent at its time whether or not earlier ones have been answered, 100 req/s in all by
  default), for `--seconds`. Latency runs from the moment a request was due to the end of its
  answer, so time spent waiting for a connection or behind a slow answer counts
  (no coordinated omission). "uncached" makes every request distinct (another `to` second, or
  an extra UDF parameter), so each one is computed from PostgreSQL: the worst case, a crowd
  of traders each on their own chart. "cached" repeats one request: many traders on the same
  chart, answered from the shared answer cache (Redis, 5 s) and its in-process copy.
- **saturation** (no target, throughput only): `--clients` connections sending uncached
  requests back to back with no think time (a closed loop), `--requests` in all. It measures
  how many requests per second the server completes; its latencies are queueing (p99 is
  about clients / throughput), not what a trader sees, and are printed only for that reason.

Environment: VOLSPIKE_BENCH_PG, VOLSPIKE_BENCH_REDIS (see bench/webapp_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from bench.detection_latency import percentile
from bench.webapp_server import bench_database, bench_webapp
from db.partitions import ensure_partitions

HOURS = 500
SYMBOL = "BTCUSDT"
TARGET_MS = 30.0
REQUEST_TIMEOUT = 30.0  # an answer later than this counts as failed

Paths = Callable[[int], str]  # request number -> path


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


def distinct_to(to: int, n: int) -> int:
    """Request n's `to`: 1 to 3599 s after the newest bar's hour, then the same in each later
    year (the same 500 bars, another cache key for 34 million requests)."""
    return to + 1 + n % 3599 + n // 3599 * 365 * 86400


def cases(to: int) -> dict[str, tuple[Paths, bool]]:
    """name -> (path of request n, whether it is uncached)."""
    frm = to - HOURS * 3600
    candles = f"/api/candles?symbol={SYMBOL}&interval=1h&limit=500&from={frm}"
    history = f"/udf/history?symbol={SYMBOL}&resolution=60&from={frm}&to={to}&countback=500"
    return {
        "/api/candles 1h x500 uncached": (lambda n: f"{candles}&to={distinct_to(to, n)}", True),
        "/api/candles 1h x500 cached": (lambda n: f"{candles}&to={to}", False),
        "/udf/history 60 x500 uncached": (lambda n: f"{history}&n={n}", True),
        "/udf/history 60 x500 cached": (lambda n: history, False),
    }


async def _get(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status} for {url}")


async def _connected(
    base: str, path: Paths, numbers: Iterator[int], clients: int, headers: Mapping[str, str] | None = None
) -> aiohttp.ClientSession:
    """A session with `clients` keep-alive connections already open (the steady state of
    `clients` charts, not their TCP handshakes); `headers` go with every request."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients), headers=headers)
    await asyncio.gather(*(_get(session, base + path(next(numbers))) for _ in range(clients)))
    return session


async def open_loop(
    base: str,
    path: Paths,
    numbers: Iterator[int],
    clients: int,
    rate: float,
    seconds: float,
    seed: int = 1,
    headers: Mapping[str, str] | None = None,
) -> tuple[list[float], int]:
    """Each client sends at Poisson arrivals of `rate`/s for `seconds`; latencies (s) measured
    from each request's due time, and the number of failed requests. `headers`: sent with
    every request (e.g. a Mini App user's `Authorization`)."""
    rng = random.Random(seed)
    latencies: list[float] = []
    failed = 0
    session = await _connected(base, path, numbers, clients, headers)
    loop = asyncio.get_running_loop()

    async def one(due: float, url: str) -> None:
        nonlocal failed
        try:
            await _get(session, url)
        except (aiohttp.ClientError, TimeoutError, RuntimeError):
            failed += 1
        else:
            latencies.append(loop.time() - due)

    async def client(first: float) -> None:
        due, stop = first, loop.time() + seconds
        requests: list[asyncio.Task[None]] = []
        while due < stop:
            await asyncio.sleep(max(0.0, due - loop.time()))
            requests.append(asyncio.create_task(one(due, base + path(next(numbers)))))
            due += rng.expovariate(rate)
        await asyncio.gather(*requests)

    try:
        start = loop.time()
        await asyncio.gather(*(client(start + rng.expovariate(rate)) for _ in range(clients)))
    finally:
        await session.close()
    return latencies, failed


async def closed_loop(
    base: str, path: Paths, numbers: Iterator[int], clients: int, requests: int
) -> tuple[list[float], float]:
    """`clients` connections sending back to back until `requests` are sent; latencies (s) of
    those answered, and the elapsed time."""
    latencies: list[float] = []
    counter = itertools.islice(numbers, requests)
    session = await _connected(base, path, numbers, clients)

    async def client() -> None:
        for n in counter:
            started = time.perf_counter()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, RuntimeError):  # not counted
                await _get(session, base + path(n))
                latencies.append(time.perf_counter() - started)

    try:
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    finally:
        await session.close()
    return latencies, elapsed


def _ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


async def measure(
    clients: int = 100,
    rate: float = 1.0,
    seconds: float = 20.0,
    requests: int = 3000,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Rows with `name`, `figure`, `target` (and the numbers: `p50_ms`, `p99_ms`, `rps`, `ok`)."""
    rows: list[dict[str, Any]] = []
    async with bench_database() as database_url:
        to = await seed(database_url)
        async with bench_webapp(database_url, webapp_workers=workers) as app:
            if log:
                log(
                    f"webapp pid {app.pid}, {workers} process(es); {clients} clients; "
                    f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs before the run"
                )
            for name, (path, uncached) in cases(to).items():
                numbers = (
                    itertools.count()
                )  # request numbers never repeat within a case: uncached stays uncached
                latencies, failed = await open_loop(app.url, path, numbers, clients, rate, seconds)
                p50, p99 = _ms(latencies, 0.5), _ms(latencies, 0.99)
                worst = max(latencies, default=0.0) * 1000
                row = {
                    "name": f"latency: {name}, {clients} clients x {rate:g} req/s (open loop)",
                    "figure": f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.0f} ms"
                    + (f", {failed} failed" if failed else ""),
                    "target": f"p99 < {TARGET_MS:g} ms",
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "rps": len(latencies) / seconds,
                    "ok": p99 < TARGET_MS and not failed,
                    "samples_ms": [t * 1000 for t in latencies],
                }
                rows.append(row)
                if log:
                    log(f"{row['name']}: {row['figure']}")
                if not uncached:
                    continue
                latencies, elapsed = await closed_loop(app.url, path, numbers, clients, requests)
                rps = len(latencies) / elapsed
                row = {
                    "name": f"saturation: {name}, {clients} clients, no think time (closed loop)",
                    "figure": f"{rps:.0f} req/s (queueing: p50 {_ms(latencies, 0.5):.0f} ms, "
                    f"p99 {_ms(latencies, 0.99):.0f} ms)",
                    "target": "none (throughput)",
                    "p50_ms": _ms(latencies, 0.5),
                    "p99_ms": _ms(latencies, 0.99),
                    "rps": rps,
                    "ok": True,
                }
                rows.append(row)
                if log:
                    log(f"{row['name']}: {row['figure']}")
    return rows


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients (charts)")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="requests per second per client (latency rows)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each latency row")
    parser.add_argument("--requests", type=int, default=3000, help="requests of each saturation row")
    parser.add_argument(
        "--workers", type=int, default=1, help="webapp processes on the port (WEBAPP_WORKERS)"
    )
    args = parser.parse_args()
    rows = await measure(args.clients, args.rate, args.seconds, args.requests, args.workers, log=print)
    print()
    width = max(len(r["name"]) for r in rows)
    print(f"{'case':{width}}  {'figure':58}  target")
    for r in rows:
        verdict = "" if r["target"].startswith("none") else ("  ok" if r["ok"] else "  MISSED")
        print(f"{r['name']:{width}}  {r['figure']:58}  {r['target']}{verdict}")
    print(f"load average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


async def rows(clients: int = 100, requests: int = 3000, seconds: float = 20.0, workers: int = 1) -> Any:
    """`volspike bench`'s rows (a bench.rows.Section) from `measure()`: each case's p99 at
    `clients` clients of 1 req/s (the target), and each uncached case's saturation throughput."""
    from bench.rows import Row, Section

    section = Section()
    for r in await measure(clients=clients, seconds=seconds, requests=requests, workers=workers):
        name = str(r["name"])
        if name.startswith("saturation"):
            section.rows.append(Row(name, r["rps"], "req/s", "none (throughput)", r["figure"]))
            continue
        section.rows.append(Row(f"{name} p99", r["p99_ms"], "ms", f"< {TARGET_MS:g}", r["figure"], r["ok"]))
        section.samples[name.split(",")[0].removeprefix("latency: ")] = r["samples_ms"]
    return section


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
