"""/ws fan-out: one process holding 10,000 WebSockets, and one alert reaching all of them.

    .venv/bin/python -m bench.ws_fanout [--sockets 10000] [--alerts 5]

The real webapp serves in a child process (its open-files limit raised to the hard limit);
this process opens `--sockets` WebSockets, each signed in as an elite user with initData in
the handshake and subscribed to alerts. Then `--alerts` times, an alert is PUBLISHed on the
live alert channel exactly as ingest's publisher does, and the table gives the time from the
PUBLISH until the first and the last socket had it (target: last < 1 s), how many got it, and
the webapp process's memory (VmRSS) before and with the sockets open.
Environment: VOLSPIKE_BENCH_PG, VOLSPIKE_BENCH_REDIS (see bench/webapp_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

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


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=5)
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
            received: list[list[float]] = [[] for _ in range(args.alerts)]
            everyone = [asyncio.Event() for _ in range(args.alerts)]
            opened = 0
            ready = asyncio.Event()
            stop = asyncio.Event()
            gate = asyncio.Semaphore(200)
            headers = {"Authorization": f"tma {init_data(USER_ID, auth_date=datetime.now(UTC))}"}
            connector = aiohttp.TCPConnector(limit=0)

            async def socket_client(session: aiohttp.ClientSession) -> None:
                nonlocal opened
                async with gate:
                    ws = await session.ws_connect(f"{app.url}/ws", headers=headers, autoping=True)
                    await ws.send_str('{"op":"subscribe","channel":"alerts"}')
                opened += 1
                if opened == args.sockets:
                    ready.set()
                try:
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break
                        data = orjson.loads(message.data)
                        if data.get("type") == "alert":
                            n = data["alert"]["id"] - 1
                            received[n].append(time.perf_counter())
                            if len(received[n]) == args.sockets:
                                everyone[n].set()
                finally:
                    await ws.close()

            async with aiohttp.ClientSession(connector=connector) as session:
                began = time.perf_counter()
                clients = [asyncio.create_task(socket_client(session)) for _ in range(args.sockets)]
                await asyncio.wait_for(ready.wait(), 600)
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
                        await asyncio.wait_for(everyone[n].wait(), 30)
                        rows.append((min(received[n]) - sent, max(received[n]) - sent, len(received[n])))
                        await asyncio.sleep(0.5)
                finally:
                    await redis.aclose()
                    stop.set()
                    for task in clients:
                        task.cancel()
                    await asyncio.gather(*clients, return_exceptions=True)
            print(f"{args.sockets} sockets opened in {connect_s:.1f} s; webapp pid {app.pid}")
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


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
