"""/ws fan-out: one webapp process holding 10,000 WebSockets, and one alert reaching all of them.

    .venv/bin/python -m bench.ws_fanout [--sockets 10000] [--alerts 5] [--client-procs 2]

The real webapp serves in a child process (its open-files limit raised to the hard limit).
`--client-procs` other processes open `--sockets` WebSockets between them, each signed in as
an elite user with initData in the handshake and subscribed to alerts (several client
processes, so that reading 10,000 frames is not one Python loop's bottleneck). Then
`--alerts` times, an alert is PUBLISHed on the live alert channel exactly as ingest's
publisher does; the table gives the time from the PUBLISH until the first and the last socket
had it (CLOCK_MONOTONIC, shared by the processes; target: last < 1 s), how many got it, and
the webapp process's memory (VmRSS) before and with the sockets open.
Environment: VOLSPIKE_BENCH_PG, VOLSPIKE_BENCH_REDIS (see bench/webapp_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import asyncpg
import orjson
from redis.asyncio import Redis

from bench.detection_latency import percentile
from bench.ingest_memory import proc_status
from bench.webapp_server import REDIS_URL, bench_database, bench_webapp, raise_open_files
from tests.miniapp_harness import BOT_TOKEN, init_data
from volspike.alerts import Alert, AlertType
from volspike.redis_names import RedisNames

USER_ID = 4242


def alert(n: int) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        symbol="BTCUSDT",
        asset="BTC",
        alert_type=AlertType.SPIKE,
        hour=now.replace(minute=0, second=0, microsecond=0),
        detected_at=now,
        current_volume=5e9,
        previous_volume=1.5e9,
        ratio=3.33,
        price=97123.4,
        funding_rate=0.0001,
        id=n + 1,
    )


def _client_process(url: str, sockets: int, alerts: int, pipe: Connection) -> None:
    raise_open_files()
    asyncio.run(_clients(url, sockets, alerts, pipe))


async def _clients(url: str, sockets: int, alerts: int, pipe: Connection) -> None:
    """Open `sockets` sockets, say "ready", then report (first, last, count) of each alert."""
    received: list[list[float]] = [[] for _ in range(alerts)]
    everyone = [asyncio.Event() for _ in range(alerts)]
    opened = 0
    ready = asyncio.Event()
    gate = asyncio.Semaphore(100)
    headers = {"Authorization": f"tma {init_data(USER_ID, auth_date=datetime.now(UTC))}"}

    async def socket_client(session: aiohttp.ClientSession) -> None:
        nonlocal opened
        async with gate:
            ws = await session.ws_connect(f"{url}/ws", headers=headers)
            await ws.send_str('{"op":"subscribe","channel":"alerts"}')
        opened += 1
        if opened == sockets:
            ready.set()
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                if '"type":"alert"' in message.data:
                    n = orjson.loads(message.data)["alert"]["id"] - 1
                    received[n].append(time.perf_counter())
                    if len(received[n]) == sockets:
                        everyone[n].set()
        finally:
            await ws.close()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        clients = [asyncio.create_task(socket_client(session)) for _ in range(sockets)]
        await ready.wait()
        pipe.send("ready")
        try:
            for n in range(alerts):
                with contextlib.suppress(TimeoutError):  # reported as fewer sockets
                    await asyncio.wait_for(everyone[n].wait(), 30)
                times = received[n]
                pipe.send((min(times, default=0.0), max(times, default=0.0), len(times)))
        finally:
            for task in clients:
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)


async def _recv(pipe: Connection) -> object:
    return await asyncio.to_thread(pipe.recv)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=5)
    parser.add_argument("--client-procs", type=int, default=2)
    args = parser.parse_args()
    limit = raise_open_files()
    if limit < args.sockets + 100:
        print(f"open-files limit {limit} is below {args.sockets + 100}; lower --sockets")
        return 1
    async with bench_database() as database_url:
        conn = await asyncpg.connect(database_url)
        await conn.execute("INSERT INTO users (id, first_name, tier) VALUES ($1, 'Bench', 'elite')", USER_ID)
        await conn.close()
        async with bench_webapp(database_url, bot_token=BOT_TOKEN) as app:
            before = proc_status(app.pid)["VmRSS"]
            context = multiprocessing.get_context("spawn")
            share = [args.sockets // args.client_procs] * args.client_procs
            share[0] += args.sockets - sum(share)
            pipes, procs = [], []
            began = time.perf_counter()
            for count in share:
                ours, theirs = context.Pipe()
                proc = context.Process(target=_client_process, args=(app.url, count, args.alerts, theirs))
                proc.start()
                pipes.append(ours)
                procs.append(proc)
            try:
                for pipe in pipes:
                    assert await asyncio.wait_for(_recv(pipe), 900) == "ready"
                connect_s = time.perf_counter() - began
                await asyncio.sleep(2)  # the last subscribe commands reach the hub
                held = proc_status(app.pid)["VmRSS"]
                names = RedisNames(app.settings.redis_prefix)
                redis = Redis.from_url(REDIS_URL)
                rows = []
                try:
                    for n in range(args.alerts):
                        sent = time.perf_counter()
                        await redis.publish(names.alerts_channel, alert(n).to_json())
                        parts = [await _recv(pipe) for pipe in pipes]
                        first = min(p[0] for p in parts)  # type: ignore[index]
                        last = max(p[1] for p in parts)  # type: ignore[index]
                        rows.append((first - sent, last - sent, sum(p[2] for p in parts)))  # type: ignore[index]
                        await asyncio.sleep(1)
                finally:
                    await redis.aclose()
            finally:
                for proc in procs:
                    proc.join(60)
                    if proc.is_alive():
                        proc.terminate()
            print(f"{args.sockets} sockets from {args.client_procs} processes opened in {connect_s:.1f} s")
            print(
                f"webapp VmRSS: {before / 1024:.0f} MiB idle, {held / 1024:.0f} MiB with the sockets "
                f"({(held - before) / args.sockets:.1f} KiB per socket)"
            )
            print(f"{'alert':>5} {'first ms':>9} {'last ms':>9} {'sockets':>8}  target last < 1000 ms")
            for n, (first, last, count) in enumerate(rows, 1):
                verdict = "ok" if last < 1 and count == args.sockets else "MISSED"
                print(f"{n:5} {first * 1000:9.1f} {last * 1000:9.1f} {count:8}  {verdict}")
            lasts = [last for _, last, _ in rows]
            print(f"last-socket p50 {percentile(lasts, 0.5) * 1000:.1f} ms, max {max(lasts) * 1000:.1f} ms")
    return 0


async def rows(sockets: int = 10_000, alerts: int = 5, client_procs: int = 2) -> Any:
    """`volspike bench`'s rows (a bench.rows.Section): sockets held, PUBLISH → last socket."""
    from bench.rows import Row, Section

    raise_open_files()
    async with bench_database() as database_url:
        conn = await asyncpg.connect(database_url)
        await conn.execute("INSERT INTO users (id, first_name, tier) VALUES ($1, 'Bench', 'elite')", USER_ID)
        await conn.close()
        async with bench_webapp(database_url, bot_token=BOT_TOKEN) as app:
            context = multiprocessing.get_context("spawn")
            share = [sockets // client_procs] * client_procs
            share[0] += sockets - sum(share)
            pipes, procs = [], []
            for count in share:
                ours, theirs = context.Pipe()
                proc = context.Process(target=_client_process, args=(app.url, count, alerts, theirs))
                proc.start()
                pipes.append(ours)
                procs.append(proc)
            lasts, reached = [], []
            try:
                for pipe in pipes:
                    assert await asyncio.wait_for(_recv(pipe), 900) == "ready"
                await asyncio.sleep(2)  # the last subscribe commands reach the hub
                held = proc_status(app.pid)["VmRSS"] / 1024
                redis = Redis.from_url(REDIS_URL)
                try:
                    for n in range(alerts):
                        sent = time.perf_counter()
                        await redis.publish(
                            RedisNames(app.settings.redis_prefix).alerts_channel, alert(n).to_json()
                        )
                        parts = [await _recv(pipe) for pipe in pipes]
                        lasts.append((max(p[1] for p in parts) - sent) * 1000)  # type: ignore[index]
                        reached.append(sum(p[2] for p in parts))  # type: ignore[index]
                        await asyncio.sleep(1)
                finally:
                    await redis.aclose()
            finally:
                for proc in procs:
                    proc.join(60)
                    if proc.is_alive():
                        proc.terminate()
    last = max(lasts, default=float("nan"))
    every = min(reached, default=0)
    return Section(
        [
            Row(
                "/ws connections held",
                every,
                "sockets",
                f">= {sockets}",
                f"webapp VmRSS {held:.0f} MiB",
                every >= sockets,
            ),
            Row(
                f"/ws PUBLISH → last of {sockets} sockets has the alert (max of {alerts})",
                last,
                "ms",
                "< 1000",
                f"p50 {percentile(lasts, 0.5):.1f} ms",
                last < 1000,
            ),
        ],
        {"/ws: PUBLISH → last socket": lasts},
    )


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
