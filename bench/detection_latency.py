"""Detection latency: the frame that crosses the spike line → the alert row committed,
measured inside the ingest service (publishing to the Redis stream follows the commit).

The simulator runs as its own process (`volspike sim`); spikes are triggered on demand over its
control API (`POST /sim/spike`), one symbol at a time. Two figures per alert:

- received → committed: `time.perf_counter()` when the websocket frame was read, to
  the alert row's INSERT committing (`AlertPublisher.emit(on_commit=...)`) — what ingest adds;
- event → committed: the exchange event time `E` of the frame (the alert's `detected_at`)
  to the row's `created_at` — adds the exchange's send and the network (same clock here).

Needs PostgreSQL and Redis; uses a database of its own, `volspike_bench_detection_<pid>`, dropped afterwards.

    .venv/bin/python -m bench.detection_latency [--symbols 600] [--spikes 100] [--gap 0.3] [--phases 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
from redis.asyncio import Redis

from bench.ingest_memory import SIM_WARM_TIMEOUT, free_port, start_sim, stop, wait_http
from bench.rows import Row, Section
from core.settings import load_settings
from db.migrate import migrate
from db.pool import create_pool
from ingest.service import IngestService, IngestTimings

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def trigger_spikes(port: int, symbols: list[str], gap: float, min_volume: float) -> None:
    """The triggering side (its own process): one `POST /sim/spike` per symbol, `gap` apart."""
    async with aiohttp.ClientSession() as session:
        for symbol in symbols:
            body = {"symbol": symbol, "multiple": 5.0, "min_quote_volume": min_volume}
            async with session.post(f"http://127.0.0.1:{port}/sim/spike", json=body) as resp:
                resp.raise_for_status()
            await asyncio.sleep(gap)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=600)
    parser.add_argument("--spikes", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between spikes")
    parser.add_argument("--phases", type=int, default=10, help="simulator update slots (1: one burst)")
    parser.add_argument("--trigger", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--min-volume", type=float, default=6e6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trigger is not None:
        await trigger_spikes(args.trigger, sys.stdin.read().split(), args.gap, args.min_volume)
        return 0
    inside, end_to_end, triggered = await measure(args.symbols, args.spikes, args.gap, args.phases)
    print(
        f"\ndetection latency, {args.symbols} simulator symbols, {triggered} spikes triggered, "
        f"simulator updates in {args.phases} slot(s) per 250 ms\n"
    )
    print(f"{'measure':<26} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, values in (("received → committed", inside), ("event time → committed", end_to_end)):
        print(
            f"{label:<26} {len(values):>4} {percentile(values, 0.5):8.2f} {percentile(values, 0.9):8.2f} "
            f"{percentile(values, 0.99):8.2f} {max(values, default=float('nan')):8.2f}"
        )
    return 0


async def rows(symbols: int = 600, spikes: int = 100, gap: float = 0.3, phases: int = 10) -> Section:
    """`volspike bench`'s rows: detection latency p50/p99 (received → committed)."""
    inside, end_to_end, triggered = await measure(symbols, spikes, gap, phases)
    p50, p99 = percentile(inside, 0.5), percentile(inside, 0.99)
    also = (
        f"event time → committed p99 {percentile(end_to_end, 0.99):.1f} ms; {len(inside)}/{triggered} alerts"
    )
    return Section(
        [
            Row("detection latency p50 (frame → alert committed)", p50, "ms", "< 10", also, p50 < 10),
            Row("detection latency p99 (frame → alert committed)", p99, "ms", "< 25", also, p99 < 25),
        ],
        {"detection: frame → alert committed": inside},
    )


async def measure(symbols: int, spikes: int, gap: float, phases: int) -> tuple[list[float], list[float], int]:
    """(received → committed ms, event time → committed ms, spikes triggered)."""
    base = load_settings(_env_file=None)
    db_name = f"volspike_bench_detection_{os.getpid()}"  # its own: other runs may be going on
    admin_url = base.database_url.rsplit("/", 1)[0] + "/postgres"
    database_url = base.database_url.rsplit("/", 1)[0] + f"/{db_name}"
    prefix = f"volspike-bench:{os.getpid()}:"
    await migrate(database_url)
    port = free_port()
    sim = await start_sim(port, symbols, "--phases", str(phases))
    pool = await create_pool(database_url, min_size=2, max_size=8)
    redis = Redis.from_url(base.redis_url)
    task: asyncio.Task[None] | None = None
    try:
        await pool.execute("TRUNCATE symbols, candles_1m, alerts, mark_snapshots RESTART IDENTITY CASCADE")
        await wait_http(f"http://127.0.0.1:{port}/fapi/v1/ping", timeout=SIM_WARM_TIMEOUT)
        settings = base.model_copy(
            update={
                "database_url": database_url,
                "redis_prefix": prefix,
                "binance_rest_url": f"http://127.0.0.1:{port}",
                "binance_ws_url": f"ws://127.0.0.1:{port}",
            }
        )
        service = IngestService(settings, pool, redis, timings=IngestTimings(history=False))
        task = asyncio.create_task(service.run())
        async with asyncio.timeout(60):
            await service.armed.wait()
            while True:
                if service.health()["ok"]:
                    break
                await asyncio.sleep(0.2)
        targets = sorted(service.universe)[:spikes]
        # Spikes are triggered from another process, so that the measured event loop runs
        # ingest alone (an HTTP client in it would add its own callbacks to the figures).
        trigger = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bench.detection_latency", "--trigger", str(port)),
            *("--gap", str(gap), "--min-volume", str(settings.spike_min_quote_volume * 2)),
            cwd=ROOT,
            stdin=subprocess.PIPE,
        )
        await trigger.communicate("\n".join(targets).encode())
        if trigger.returncode != 0:
            raise RuntimeError(f"spike trigger failed ({trigger.returncode})")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while True:
                    if service.alerts_emitted >= len(targets):
                        break
                    await asyncio.sleep(0.1)
        inside = [s * 1000 for s in service.latencies]
        records = await pool.fetch(
            "SELECT extract(epoch FROM created_at - detected_at) * 1000 AS ms FROM alerts "
            "WHERE alert_type = 'SPIKE'"
        )
        end_to_end = [float(r["ms"]) for r in records]
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await pool.close()
        await stop(sim)
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        finally:
            await admin.close()

    return inside, end_to_end, len(targets)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
