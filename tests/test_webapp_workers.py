"""`WEBAPP_WORKERS=2`: two processes serve one port (SO_REUSEPORT), and a live alert and a
candle update published once reach the /ws sockets of both."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from pydantic import SecretStr

from bench.ingest_memory import free_port
from db.publisher import AlertPublisher
from ingest.candle_feed import CandleFeed
from tests.miniapp_harness import BOT_TOKEN, add_symbols, init_data, set_tier
from tests.test_ws import kline, spike
from webapp.app import run_webapp

TIMEOUT = 20.0
SOCKETS = 24  # all on one process by chance: 2 * 2**-24


def _inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                found.add(target[8:-1])
    return found


def sockets_on(port: int, pid: int, state: str) -> int:
    """How many TCP sockets of `pid` have local port `port` in `state` (0A listen, 01 established)."""
    mine = _inodes(pid)
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state and fields[9] in mine:
            count += 1
    return count


async def poll(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(TIMEOUT):
        while not predicate():  # noqa: ASYNC110 - the state of other processes, no event to wait on
            await asyncio.sleep(0.05)


async def next_message(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, object]:
    while True:
        message = await asyncio.wait_for(ws.receive(), TIMEOUT)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data: dict[str, object] = orjson.loads(message.data)
        if data.get("type") == kind:
            return data


async def test_two_worker_processes_share_the_port_and_both_get_live_alerts_and_candles(
    settings, db, redis, names
) -> None:
    await add_symbols(db, ["BTCUSDT"])
    await set_tier(db, 1001, "elite")
    port = free_port()
    served = settings.model_copy(
        update={
            "bot_token": SecretStr(BOT_TOKEN),
            "webapp_host": "127.0.0.1",
            "webapp_port": port,
            "webapp_workers": 2,
            "api_rate_per_ip": 100_000,
        }
    )
    auth = init_data(1001, auth_date=datetime.now(UTC))
    webapp = asyncio.create_task(run_webapp(served, db, redis))
    try:
        await poll(lambda: sockets_on(port, os.getpid(), "0A") == 1, "the primary listening")
        await poll(lambda: len(multiprocessing.active_children()) == 1, "the worker started")
        (worker,) = multiprocessing.active_children()
        assert worker.pid is not None
        await poll(lambda: sockets_on(port, worker.pid, "0A") == 1, "the worker listening")
        async with aiohttp.ClientSession() as session:
            sockets = []
            for _ in range(SOCKETS):
                ws = await session.ws_connect(
                    f"http://127.0.0.1:{port}/ws", headers={"Authorization": f"tma {auth}"}
                )
                sockets.append(ws)
                for command in (
                    {"op": "subscribe", "channel": "alerts"},
                    {"op": "subscribe", "channel": "candles", "symbol": "BTCUSDT"},
                    {"op": "dance"},  # answered after the two above were applied
                ):
                    await ws.send_str(orjson.dumps(command).decode())
                assert (await next_message(ws, "error"))["error"] == "unknown_op"
            assert sockets_on(port, os.getpid(), "01") >= 1
            assert sockets_on(port, worker.pid, "01") >= 1
            assert sockets_on(port, os.getpid(), "01") + sockets_on(port, worker.pid, "01") == SOCKETS
            # a worker's hub may still be subscribing to Redis: candles until every socket has one
            feed = CandleFeed(redis, names)
            pending = {id(ws): ws for ws in sockets}
            close = 100.0
            async with asyncio.timeout(TIMEOUT):
                while pending:
                    close += 1
                    feed.update(kline("BTCUSDT", close))
                    await feed.flush()
                    for key, ws in list(pending.items()):
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(0.2):
                                assert (await next_message(ws, "candle"))["symbol"] == "BTCUSDT"
                                del pending[key]
            saved = await AlertPublisher(db, redis, names).emit(spike())
            assert saved is not None
            for ws in sockets:
                assert (await next_message(ws, "alert"))["alert"]["id"] == saved.id  # type: ignore[index]
            for ws in sockets:
                await ws.close()
    finally:
        webapp.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await webapp
    assert multiprocessing.active_children() == []
