"""Resident memory of `volspike ingest` following the simulator's symbols.

Starts `volspike sim` and `volspike ingest` as two processes (ingest exactly as deployed,
through the CLI), samples the ingest process's RSS every second, and prints a table and the
peak (VmHWM). Needs PostgreSQL and Redis (DATABASE_URL's server, REDIS_URL); uses the
database `volspike_bench` and a Redis prefix of its own.

    .venv/bin/python bench/ingest_memory.py --symbols 600 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
from redis.asyncio import Redis

from bench.rows import Row, Section
from core.redis_names import RedisNames
from core.settings import load_settings
from db.migrate import migrate
from db.pool import create_pool

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid` in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


async def stop(proc: asyncio.subprocess.Process, grace: float = 30.0) -> None:
    """SIGTERM, `grace` seconds to exit (a loaded machine is slow), then SIGKILL."""
    if proc.returncode is None:
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        proc.kill()
        await proc.wait()


# `volspike sim --warm` computes every symbol's last day before it listens (~90 ms a symbol).
SIM_WARM_TIMEOUT = 300.0


async def start_sim(port: int, symbols: int, *options: str) -> asyncio.subprocess.Process:
    """`volspike sim --warm` on `port` in a child process (its output discarded); wait for its
    `/fapi/v1/ping` with SIM_WARM_TIMEOUT to know it listens."""
    command = ("-m", "volspike.cli", "sim", "--port", str(port), "--symbols", str(symbols), "--warm")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        *options,
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_http(url: str, timeout: float = 30.0) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while True:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    run = await measure(args.symbols, args.seconds)
    if run is None:
        return 1
    rows, peak, stop_seconds, code = run
    print(f"\nvolspike ingest following {args.symbols} simulator symbols (+ filtered extras)\n")
    print(f"{'t (s)':>6} {'RSS (MiB)':>10} {'symbols':>8} {'ws msgs':>9} {'backfilled':>11}")
    for t, rss, symbols, messages, backfilled in rows[:: max(1, len(rows) // 12)] + rows[-1:]:
        print(f"{t:6.0f} {rss:10.1f} {symbols:8d} {messages:9d} {backfilled:11d}")
    print(f"\npeak RSS (VmHWM): {peak:.1f} MiB")
    print(f"shutdown after SIGTERM: {stop_seconds:.2f} s (exit code {code})")
    return 0


async def rows(symbols: int = 600, seconds: float = 60.0) -> Section:
    """`volspike bench`'s row: ingest's peak resident memory following `symbols` symbols."""
    run = await measure(symbols, seconds)
    if run is None:
        return Section(
            [Row(f"ingest peak RSS, {symbols} symbols", None, "MiB", "< 200", "ingest exited early")]
        )
    samples, peak, stop_seconds, _ = run
    last = samples[-1][1] if samples else float("nan")
    also = f"last sample {last:.1f} MiB after {seconds:g} s; SIGTERM → exit {stop_seconds:.2f} s"
    return Section(
        [Row(f"ingest peak RSS (VmHWM), {symbols} symbols", peak, "MiB", "< 200", also, peak < 200)]
    )


Sample = tuple[float, float, int, int, int]  # t, RSS MiB, symbols, ws messages, backfilled


async def measure(symbols: int, seconds: float) -> tuple[list[Sample], float, float, int | None] | None:
    """(samples, peak MiB, seconds from SIGTERM to exit, exit code); None when ingest died early."""
    base = load_settings(_env_file=None)
    database_url = base.database_url.rsplit("/", 1)[0] + "/volspike_bench"
    prefix = f"volspike-bench:{os.getpid()}:"
    await migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    await pool.execute("TRUNCATE symbols, candles_1m, alerts, mark_snapshots RESTART IDENTITY CASCADE")
    await pool.close()
    redis = Redis.from_url(base.redis_url)
    names = RedisNames(prefix)

    port = free_port()
    sim = await start_sim(port, symbols)
    ingest: asyncio.subprocess.Process | None = None
    rows: list[Sample] = []
    stop_seconds = float("nan")
    try:
        await wait_http(f"http://127.0.0.1:{port}/fapi/v1/ping", timeout=SIM_WARM_TIMEOUT)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": base.redis_url,
            "REDIS_PREFIX": prefix,
            "BINANCE_REST_URL": f"http://127.0.0.1:{port}",
            "BINANCE_WS_URL": f"ws://127.0.0.1:{port}",
            "LOG_LEVEL": "WARNING",
        }
        ingest = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "volspike.cli", "ingest"), cwd=ROOT, env=env, stderr=subprocess.DEVNULL
        )
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            await asyncio.sleep(1.0)
            if ingest.returncode is not None:
                print(f"ingest exited early with {ingest.returncode}", file=sys.stderr)
                return None
            status = proc_status(ingest.pid)
            raw = await redis.get(names.ingest_health)
            health = orjson.loads(raw) if raw else {}
            messages = sum(c.get("messages", 0) for c in health.get("connections", []))
            rows.append(
                (
                    time.monotonic() - started,
                    status["VmRSS"] / 1024,
                    int(health.get("symbols", 0)),
                    messages,
                    int(health.get("backfilled_candles", 0)),
                )
            )
        peak = proc_status(ingest.pid)["VmHWM"] / 1024
        stopping = time.monotonic()
        ingest.send_signal(signal.SIGTERM)
        await asyncio.wait_for(ingest.wait(), 15)
        stop_seconds = time.monotonic() - stopping
    finally:
        for proc in (ingest, sim):
            if proc is not None:
                await stop(proc)
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    return rows, peak, stop_seconds, ingest.returncode if ingest else None


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
