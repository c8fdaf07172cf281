"""The live /ws through real WebSockets and Redis pub/sub: alerts for elite, candle updates,
errors, heartbeat, a slow client dropped without slowing the others, and resubscription
after a Redis restart (a Redis server of the test's own)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta

import orjson
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType, WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from redis.asyncio import Redis

from core.alerts import Alert, AlertType
from core.clock import ManualClock
from core.redis_names import RedisNames
from db.publisher import AlertPublisher
from ingest.candle_feed import CandleFeed
from ingest.parsers import Kline
from tests.miniapp_harness import BOT_TOKEN, NOW, add_minutes, add_symbols, init_data, set_tier
from webapp import session as web_session
from webapp.app import create_app
from webapp.ws import LIVE_HUB, LIVE_OPTIONS, LiveHub, LiveOptions

TIMEOUT = 10.0


def kline(symbol: str, close: float, *, closed: bool = False, minute: int = 0) -> Kline:
    open_ms = int((NOW + timedelta(minutes=minute)).timestamp() * 1000)
    return Kline(
        symbol=symbol,
        interval="1m",
        open_time_ms=open_ms,
        close_time_ms=open_ms + 59_999,
        open=100.0,
        high=max(100.0, close),
        low=min(100.0, close),
        close=close,
        volume=10.0,
        quote_volume=1000.0,
        trades=5,
        taker_buy_volume=4.0,
        taker_buy_quote=400.0,
        closed=closed,
        event_time_ms=open_ms + 1000,
    )


def spike(symbol: str = "BTCUSDT") -> Alert:
    return Alert(
        symbol=symbol,
        asset=symbol.removesuffix("USDT"),
        alert_type=AlertType.SPIKE,
        hour=NOW.replace(minute=0),
        detected_at=NOW,
        current_volume=5e9,
        previous_volume=1.5e9,
        ratio=3.3333,
        price=97123.4,
        funding_rate=0.0001,
    )


@contextlib.asynccontextmanager
async def live_app(settings, db, redis, options: LiveOptions | None = None) -> AsyncIterator[TestClient]:
    await add_symbols(db, ["BTCUSDT", "ETHUSDT"])
    app_settings = settings.model_copy(update={"bot_token": SecretStr(BOT_TOKEN), "api_rate_per_ip": 100_000})
    app = create_app(app_settings, pool=db, redis=redis, clock=ManualClock(NOW))
    app[LIVE_OPTIONS] = options or LiveOptions()
    async with TestClient(TestServer(app)) as client:
        await asyncio.wait_for(app[LIVE_HUB].subscribed.wait(), TIMEOUT)
        yield client


async def receive(ws: ClientWebSocketResponse, *, skip_pings: bool = True) -> dict[str, object]:
    while True:
        message = await asyncio.wait_for(ws.receive(), TIMEOUT)
        assert message.type == WSMsgType.TEXT, message
        data: dict[str, object] = orjson.loads(message.data)
        if not (skip_pings and data.get("type") == "ping"):
            return data


async def send(ws: ClientWebSocketResponse, **command: object) -> None:
    await ws.send_str(orjson.dumps(command).decode())


async def until(predicate, timeout: float = TIMEOUT) -> None:
    """Poll a condition on the server's state (it has no event to wait on)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling the server's state from the test
            await asyncio.sleep(0.01)


def hub_of(client: TestClient) -> LiveHub:
    return client.server.app[LIVE_HUB]


async def test_elite_socket_receives_an_alert_published_by_ingests_publisher(
    settings, db, redis, names
) -> None:
    await set_tier(db, 1001, "elite")
    async with live_app(settings, db, redis) as client, client.ws_connect("/ws") as ws:
        await send(ws, op="auth", initData=init_data(1001))
        await send(ws, op="subscribe", channel="alerts")
        await until(lambda: any(c.alerts for c in hub_of(client).clients))
        publisher = AlertPublisher(db, redis, names)
        saved = await publisher.emit(spike())
        assert saved is not None
        message = await receive(ws)
        assert message["type"] == "alert"
        alert = message["alert"]
        assert alert["id"] == saved.id and alert["symbol"] == "BTCUSDT" and alert["type"] == "SPIKE"
        assert alert["ratio"] == 3.3333 and alert["detectedAt"] == "2026-03-02T12:00:00Z"
        assert alert["text"].startswith("BTC hourly volume $5.00B (3.33× prev) — VOLUME SPIKE!")


async def test_a_live_alert_carries_its_hours_sparkline_and_goes_without_it_when_postgres_is_slow(
    settings, db, redis, names
) -> None:
    await set_tier(db, 1001, "elite")
    hour = NOW.replace(minute=0) - timedelta(hours=1)
    await add_minutes(db, "BTCUSDT", hour, 7, price=100.0)  # 11:00-11:06 stored, closes 100.5 ... 106.5
    late = dataclasses.replace(spike(), hour=hour, detected_at=hour + timedelta(minutes=7))
    async with live_app(settings, db, redis) as client, client.ws_connect("/ws") as ws:
        await send(ws, op="auth", initData=init_data(1001))
        await send(ws, op="subscribe", channel="alerts")
        await until(lambda: any(c.alerts for c in hub_of(client).clients))
        assert await AlertPublisher(db, redis, names).emit(late) is not None
        alert = (await receive(ws))["alert"]
        assert alert["sparkline"] == {"minutes": list(range(7)), "closes": [100.5 + i for i in range(7)]}

        # PostgreSQL holds the hour's rows longer than the hub waits: the alert goes at once, bare.
        async with db.acquire() as blocker, blocker.transaction():
            await blocker.execute("LOCK TABLE candles_1m IN ACCESS EXCLUSIVE MODE")
            other = dataclasses.replace(late, symbol="ETHUSDT", asset="ETH", price=3500.0)
            assert await AlertPublisher(db, redis, names).emit(other) is not None
            alert = (await receive(ws))["alert"]
            assert alert["symbol"] == "ETHUSDT" and alert["sparkline"] is None


async def test_each_socket_gets_the_alert_text_in_its_users_language(settings, db, redis, names) -> None:
    await set_tier(db, 1011, "elite")
    await set_tier(db, 1012, "elite")
    await db.execute("UPDATE users SET language = 'ru' WHERE id = 1011")  # chosen in the bot
    async with (
        live_app(settings, db, redis) as client,
        client.ws_connect("/ws") as russian,
        client.ws_connect("/ws") as english,
    ):
        for ws, user_id, language in ((russian, 1011, "ru"), (english, 1012, "en")):
            await send(ws, op="auth", initData=init_data(user_id, language=language))
            await send(ws, op="subscribe", channel="alerts")
        await until(lambda: sum(c.alerts for c in hub_of(client).clients) == 2)
        await AlertPublisher(db, redis, names).emit(spike())
        ru, en = (await receive(russian))["alert"], (await receive(english))["alert"]
        assert ru["text"].startswith("BTC: часовой объём $5.00B (3.33× к пред.) — ВСПЛЕСК ОБЪЁМА!\nЦена: ")
        assert en["text"].startswith("BTC hourly volume $5.00B (3.33× prev) — VOLUME SPIKE!\nPrice: ")
        assert {k: v for k, v in ru.items() if k != "text"} == {k: v for k, v in en.items() if k != "text"}


async def test_alerts_need_elite_and_bad_commands_get_errors(settings, db, redis) -> None:
    await set_tier(db, 1002, "pro")
    async with live_app(settings, db, redis) as client, client.ws_connect("/ws") as ws:
        await send(ws, op="subscribe", channel="alerts")
        assert await receive(ws) == {"type": "error", "error": "tier_required"}
        await send(ws, op="auth", initData=init_data(1002))
        await send(ws, op="subscribe", channel="alerts")
        assert await receive(ws) == {"type": "error", "error": "tier_required"}
        await send(ws, op="auth", initData="hash=forged&user=%7B%22id%22%3A1%7D")
        assert await receive(ws) == {"type": "error", "error": "unauthorized"}
        await send(ws, op="subscribe", channel="candles", symbol="NOPEUSDT")
        assert await receive(ws) == {"type": "error", "error": "unknown_symbol"}
        await send(ws, op="dance")
        assert await receive(ws) == {"type": "error", "error": "unknown_op"}
        await ws.send_str("{not json")
        assert await receive(ws) == {"type": "error", "error": "bad_json"}
        await send(ws, op="auth", initData=init_data(1002))  # the third attempt is still taken
        await send(ws, op="auth", initData=init_data(1002))
        assert await receive(ws) == {"type": "error", "error": "too_many_requests"}


async def test_handshake_authorization_header_signs_the_socket_in(settings, db, redis, names) -> None:
    await set_tier(db, 1001, "elite")
    async with live_app(settings, db, redis) as client:
        headers = {"Authorization": f"tma {init_data(1001)}"}
        async with client.ws_connect("/ws", headers=headers) as ws:
            await send(ws, op="subscribe", channel="alerts")
            await until(lambda: any(c.alerts for c in hub_of(client).clients))
            await AlertPublisher(db, redis, names).emit(spike("ETHUSDT"))
            assert (await receive(ws))["alert"]["symbol"] == "ETHUSDT"  # type: ignore[index]


async def test_candle_updates_reach_only_the_sockets_of_that_symbol(settings, db, redis, names) -> None:
    async with (
        live_app(settings, db, redis) as client,
        client.ws_connect("/ws") as btc,
        client.ws_connect("/ws") as eth,
    ):
        await send(btc, op="subscribe", channel="candles", symbol="BTCUSDT")
        await send(eth, op="subscribe", channel="candles", symbol="ETHUSDT")
        await until(lambda: sum(len(c.symbols) for c in hub_of(client).clients) == 2)
        feed = CandleFeed(redis, names)
        feed.update(kline("BTCUSDT", 101.0))
        feed.update(kline("BTCUSDT", 102.0))  # the newer frame of the same minute wins
        feed.update(kline("BTCUSDT", 103.0, closed=True, minute=-1))
        assert await feed.flush() == 2
        closed = await receive(btc)
        forming = await receive(btc)
        assert closed["closed"] is True and closed["candle"]["t"] == int(NOW.timestamp()) - 60  # type: ignore[index]
        assert forming == {
            "type": "candle",
            "symbol": "BTCUSDT",
            "candle": {
                "t": int(NOW.timestamp()),
                "o": 100.0,
                "h": 102.0,
                "l": 100.0,
                "c": 102.0,
                "v": 1000.0,
            },
            "closed": False,
        }
        feed.update(kline("ETHUSDT", 99.0))
        await feed.flush()
        assert (await receive(eth))["symbol"] == "ETHUSDT"
        await send(btc, op="unsubscribe", channel="candles", symbol="BTCUSDT")
        await until(lambda: sum(len(c.symbols) for c in hub_of(client).clients) == 1)


async def test_sockets_get_a_ping_every_heartbeat(settings, db, redis) -> None:
    async with (
        live_app(settings, db, redis, LiveOptions(heartbeat=0.05)) as client,
        client.ws_connect("/ws") as ws,
    ):
        assert await receive(ws, skip_pings=False) == {"type": "ping"}
        await send(ws, op="pong")


def _raw_socket_that_never_reads(port: int) -> socket.socket:
    """A WebSocket handshake over a tiny receive buffer, and then silence: a stuck phone."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert b"101" in sock.recv(4096).split(b"\r\n", 1)[0]
    subscribe = orjson.dumps({"op": "subscribe", "channel": "candles", "symbol": "BTCUSDT"})
    mask = os.urandom(4)
    frame = (
        bytes([0x81, 0x80 | len(subscribe)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(subscribe))
    )
    sock.sendall(frame)
    return sock


async def test_a_slow_client_is_dropped_and_the_others_still_get_every_message(
    settings, db, redis, names
) -> None:
    async with live_app(settings, db, redis, LiveOptions(send_buffer=512 * 1024)) as client:
        hub = hub_of(client)
        slow = await asyncio.to_thread(_raw_socket_that_never_reads, client.server.port)
        try:
            async with client.ws_connect("/ws", max_msg_size=1 << 20) as fast:
                await send(fast, op="subscribe", channel="candles", symbol="BTCUSDT")
                await until(lambda: sum(len(c.symbols) for c in hub.clients) == 2)
                padding = "x" * 64 * 1024
                sent = 0
                while hub.dropped == 0:
                    assert sent < 2000, "the stuck socket was never dropped"
                    payload = orjson.dumps({"type": "candle", "symbol": "BTCUSDT", "n": sent, "pad": padding})
                    await hub.dispatch(names.candles_channel, payload)
                    assert (await receive(fast))["n"] == sent  # the fast socket is never held back
                    sent += 1
                await until(lambda: len(hub.clients) == 1)
                await hub.dispatch(
                    names.candles_channel, orjson.dumps({"type": "candle", "symbol": "BTCUSDT", "n": -1})
                )
                assert (await receive(fast))["n"] == -1
        finally:
            slow.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _wait_redis(url: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            probe = Redis.from_url(url)
            try:
                await probe.ping()
                return
            except OSError:
                await asyncio.sleep(0.05)
            except Exception:  # noqa: BLE001 - redis' ConnectionError while it starts
                await asyncio.sleep(0.05)
            finally:
                await probe.aclose()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
async def test_the_hub_resubscribes_after_a_redis_restart(settings, db, names) -> None:
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = _start_redis(port)
    own = Redis.from_url(url, socket_connect_timeout=1)
    try:
        await _wait_redis(url)
        async with live_app(settings, db, own, LiveOptions(backoff_cap=0.2)) as client:
            hub = hub_of(client)
            async with client.ws_connect("/ws") as ws:
                await send(ws, op="subscribe", channel="candles", symbol="BTCUSDT")
                await until(lambda: any(c.symbols for c in hub.clients))
                server.terminate()
                server.wait(timeout=TIMEOUT)
                await until(lambda: not hub.subscribed.is_set())
                server = _start_redis(port)
                await _wait_redis(url)
                await asyncio.wait_for(hub.subscribed.wait(), TIMEOUT)
                fresh = Redis.from_url(url)  # the test's own pooled connection died with the server
                try:
                    feed = CandleFeed(fresh, RedisNames(settings.redis_prefix))
                    feed.update(kline("BTCUSDT", 104.0))
                    await feed.flush()
                finally:
                    await fresh.aclose()
                assert (await receive(ws))["candle"]["c"] == 104.0  # type: ignore[index]
    finally:
        await own.aclose()
        server.terminate()
        server.wait(timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("https://evil.example", False),
        ("https://web.telegram.org.evil.example", False),
        ("https://x.y.web.telegram.org", False),
        ("null", False),
        ("https://web.telegram.org", True),
        ("https://webk.telegram.org", True),
        ("https://a.web.telegram.org", True),
        ("https://volspike.test", True),  # WEBAPP_URL's origin (tests/conftest.py)
        ("https://volspike.test:8443", False),
    ],
)
async def test_a_cookie_session_opens_the_socket_only_from_the_apps_or_telegrams_origin(
    settings, db, redis, origin: str, accepted: bool
) -> None:
    """Cross-site WebSocket hijacking: the attack run opened /ws with a signed-in user's session
    cookie from another origin, and got their elite alert feed."""
    await set_tier(db, 1001, "elite")
    async with live_app(settings, db, redis) as client:
        session = await web_session.create(client.server.app, 1001)
        assert settings.webapp_url == "https://volspike.test"
        headers = {"Cookie": f"{web_session.COOKIE}={session.token}", "Origin": origin}
        if not accepted:
            with pytest.raises(WSServerHandshakeError) as refused:
                await client.ws_connect("/ws", headers=headers)
            assert refused.value.status == 403
            return
        async with client.ws_connect("/ws", headers=headers) as ws:
            await send(ws, op="subscribe", channel="alerts")  # elite: the cookie signed the socket in
            await until(lambda: any(c.alerts for c in hub_of(client).clients))


async def test_the_server_header_names_no_versions(settings, db, redis) -> None:
    async with live_app(settings, db, redis) as client:
        for path in ("/api/plans", "/nope", "/health"):
            assert (await client.get(path)).headers["Server"] == "volspike"
