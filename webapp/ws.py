"""GET /ws: live alerts (elite) and candle updates over a WebSocket.

One Redis pub/sub subscription per process (the `LiveHub`) receives the live alert channel
and the candle channel and fans each message out to the sockets that asked for it. An alert
carries its hour's sparkline (the stored 1-minute closes, read once per alert, as the feed's
cards have it; without it when PostgreSQL does not answer within `SPARKLINE_TIMEOUT`, never
later). A message is encoded into its WebSocket frame once per audience (alerts: once per
language of their `text`) and the same bytes are written to every socket's transport without
awaiting any of them. A socket's send queue is its transport's write buffer, bounded by
`send_buffer` bytes: a client whose buffer is over the bound is dropped (closed with 1008)
and never slows the others. The hub resubscribes after a Redis failure with a capped backoff,
and sends `{"type": "ping"}` to every socket every `heartbeat` seconds (WebSocket pings also
detect dead peers).

A handshake made with the web-session cookie (no Authorization header) is refused (403) unless
its `Origin` is the app's own or a Telegram web client's (`webapp.security.trusted_origin`).

Client → server: `{"op": "auth", "initData": "…"}` (or the `Authorization: tma …` header on
the handshake), `{"op": "subscribe"|"unsubscribe", "channel": "alerts"}` (alerts are elite's),
`{"op": "subscribe"|"unsubscribe", "channel": "candles", "symbol": "BTCUSDT"}`, `{"op": "pong"}`.
Server → client: `alert`, `candle`, `ping`, and `{"type": "error", "error": "…"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from core.alert_message import alert_text
from core.alerts import Alert
from core.errors import AppError, Forbidden
from core.i18n import DEFAULT_LOCALE, I18n, pick_locale
from core.redis_names import RedisNames
from core.tasks import raise_if_cancelling
from core.tiers import limits
from db import alert_feed
from webapp import keys
from webapp import session as web_session
from webapp.api.alerts import alert_item, localized_context
from webapp.auth import WebUser, authenticate, current_user
from webapp.keys import I18N
from webapp.security import trusted_origin
from webapp.ws_frames import text_frame

log = logging.getLogger(__name__)

SEND_BUFFER = 1 << 20  # bytes a socket may have waiting unsent before it counts as too slow
HEARTBEAT = 20.0
SPARKLINE_TIMEOUT = 0.5  # seconds a live alert waits for its sparkline; then it goes without
MAX_SYMBOLS = 20  # candle subscriptions per socket
MAX_AUTH_ATTEMPTS = 3  # `auth` commands per socket (each one checks initData and loads the user)
MAX_MESSAGE = 64 * 1024
BACKOFF_CAP = 5.0
CLOSE_TIMEOUT = 2.0

PING = text_frame(orjson.dumps({"type": "ping"}))


def _error(code: str) -> bytes:
    return text_frame(orjson.dumps({"type": "error", "error": code}))


@dataclass(eq=False)
class LiveClient:
    """One socket: what it subscribed to, and where its frames go."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport
    send_buffer: int
    user: WebUser | None = None
    alerts: bool = False
    symbols: set[str] = field(default_factory=set)
    auth_attempts: int = 0
    dropped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def locale(self) -> str:
        return DEFAULT_LOCALE if self.user is None else pick_locale(self.user.language)

    def offer(self, frame: bytes) -> bool:
        """Write an encoded frame; False (and the client is marked dropped) when the socket
        already has more than `send_buffer` bytes waiting, or is gone."""
        if self.dropped.is_set() or self.ws.closed:
            return False
        if self.transport.is_closing() or self.transport.get_write_buffer_size() > self.send_buffer:
            self.dropped.set()
            return False
        self.transport.write(frame)
        return True


class LiveHub:
    """The process's one subscription, and the sockets it feeds."""

    def __init__(
        self,
        redis: Redis,
        names: RedisNames,
        i18n: I18n,
        *,
        send_buffer: int = SEND_BUFFER,
        heartbeat: float = HEARTBEAT,
        backoff_cap: float = BACKOFF_CAP,
        pool: asyncpg.Pool | None = None,
    ) -> None:
        self._redis = redis
        self._pool = pool  # None: alerts go without their sparkline
        self._names = names
        self._i18n = i18n
        self.send_buffer = send_buffer
        self.heartbeat = heartbeat
        self._backoff_cap = backoff_cap
        self.clients: set[LiveClient] = set()
        self._alert_clients: set[LiveClient] = set()
        self._by_symbol: dict[str, set[LiveClient]] = {}
        self.subscribed = asyncio.Event()  # set while the Redis subscription is live
        self.dropped = 0  # slow clients dropped so far

    # --- sockets ------------------------------------------------------------------------

    def new_client(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport, user: WebUser | None
    ) -> LiveClient:
        client = LiveClient(ws, transport, self.send_buffer, user)
        self.clients.add(client)
        return client

    def remove(self, client: LiveClient) -> None:
        self.clients.discard(client)
        self._alert_clients.discard(client)
        for symbol in client.symbols:
            watchers = self._by_symbol.get(symbol)
            if watchers is not None:
                watchers.discard(client)
                if not watchers:
                    del self._by_symbol[symbol]
        client.symbols.clear()

    def subscribe_alerts(self, client: LiveClient, on: bool) -> None:
        client.alerts = on
        if on:
            self._alert_clients.add(client)
        else:
            self._alert_clients.discard(client)

    def subscribe_candles(self, client: LiveClient, symbol: str, on: bool) -> None:
        if on:
            client.symbols.add(symbol)
            self._by_symbol.setdefault(symbol, set()).add(client)
        else:
            client.symbols.discard(symbol)
            watchers = self._by_symbol.get(symbol)
            if watchers is not None:
                watchers.discard(client)
                if not watchers:
                    del self._by_symbol[symbol]

    def _fan_out(self, clients: set[LiveClient], frame: bytes) -> int:
        sent = 0
        for client in list(clients):
            if client.offer(frame):
                sent += 1
            else:
                self.dropped += 1
                self.remove(client)
        return sent

    # --- messages from Redis --------------------------------------------------------------

    async def dispatch(self, channel: str, data: bytes) -> int:
        """Fan one pub/sub message out; how many sockets got it."""
        try:
            if channel == self._names.alerts_channel:
                if not self._alert_clients:
                    return 0
                alert = Alert.from_json(data)
                return self._fan_out_alert(alert, await self._sparkline(alert))
            if channel == self._names.candles_channel:
                message: dict[str, Any] = orjson.loads(data)
                watchers = self._by_symbol.get(message.get("symbol", ""))
                return self._fan_out(watchers, text_frame(data)) if watchers else 0
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("malformed live message skipped", extra={"channel": channel, "error": repr(exc)})
        return 0

    async def _sparkline(self, alert: Alert) -> tuple[list[int], list[float]] | None:
        """The alert's hour as stored so far (minutes and closes); None when it cannot be read."""
        if self._pool is None:
            return None
        try:
            async with asyncio.timeout(SPARKLINE_TIMEOUT):
                hours = await alert_feed.hour_closes(self._pool, [(alert.symbol, alert.hour)])
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("live alert sent without its sparkline", extra={"error": repr(exc)})
            return None
        return hours.get((alert.symbol, alert.hour), ([], []))

    def _fan_out_alert(self, alert: Alert, sparkline: tuple[list[int], list[float]] | None) -> int:
        """The alert to every alert socket, its text in each socket's language (one frame per
        language)."""
        audiences: dict[str, set[LiveClient]] = {}
        for client in self._alert_clients:
            audiences.setdefault(client.locale, set()).add(client)
        sent = 0
        for locale, clients in audiences.items():
            item = alert_item(
                alert,
                alert_text(alert, i18n=self._i18n, locale=locale),
                lines=localized_context(alert, self._i18n, locale),
                sparkline=sparkline,
            )
            body = {"type": "alert", "alert": item.model_dump(mode="json", by_alias=True)}
            sent += self._fan_out(clients, text_frame(orjson.dumps(body)))
        return sent

    async def _listen(self, pubsub: PubSub) -> None:
        await pubsub.subscribe(self._names.alerts_channel, self._names.candles_channel)
        self.subscribed.set()
        log.info("live hub subscribed", extra={"sockets": len(self.clients)})
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self.heartbeat
        while True:
            raise_if_cancelling()
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message["type"] == "message":
                channel = message["channel"]
                await self.dispatch(
                    channel.decode() if isinstance(channel, bytes) else channel, message["data"]
                )
            if loop.time() >= next_ping:
                await pubsub.ping()  # a dead Redis connection fails here rather than staying silent
                next_ping = loop.time() + self.heartbeat

    async def run(self) -> None:
        """Stay subscribed until cancelled; after a Redis failure resubscribe with backoff."""
        delay = 0.1
        while True:
            raise_if_cancelling()
            pubsub = self._redis.pubsub()
            try:
                await self._listen(pubsub)
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                log.warning("live hub lost redis, resubscribing", extra={"error": repr(exc), "delay": delay})
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_cap)

    async def ping_loop(self) -> None:
        while True:
            raise_if_cancelling()
            await asyncio.sleep(self.heartbeat)
            self._fan_out(self.clients, PING)


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """The hub's tunables; tests and benchmarks set `app[LIVE_OPTIONS]` before start-up."""

    send_buffer: int = SEND_BUFFER
    heartbeat: float = HEARTBEAT
    backoff_cap: float = BACKOFF_CAP


LIVE_HUB = web.AppKey("live_hub", LiveHub)
LIVE_OPTIONS = web.AppKey("live_options", LiveOptions)


async def live_hub_ctx(app: web.Application) -> AsyncIterator[None]:
    """The hub and its two loops, cancelled and awaited on shutdown; open sockets are closed."""
    options = app.get(LIVE_OPTIONS) or LiveOptions()
    hub = LiveHub(
        app[keys.REDIS],
        app[keys.NAMES],
        app[I18N],
        send_buffer=options.send_buffer,
        heartbeat=options.heartbeat,
        backoff_cap=options.backoff_cap,
        pool=app[keys.POOL],
    )
    app[LIVE_HUB] = hub
    tasks = [
        asyncio.create_task(hub.run(), name="live-hub"),
        asyncio.create_task(hub.ping_loop(), name="live-ping"),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in list(hub.clients):
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


async def _command(request: web.Request, hub: LiveHub, client: LiveClient, raw: str) -> None:
    try:
        command = orjson.loads(raw)
    except orjson.JSONDecodeError:
        client.offer(_error("bad_json"))
        return
    if not isinstance(command, dict):
        client.offer(_error("bad_command"))
        return
    op, channel = command.get("op"), command.get("channel")
    if op == "pong":
        return
    if op == "auth":
        init_data = command.get("initData")
        client.auth_attempts += 1
        if client.auth_attempts > MAX_AUTH_ATTEMPTS:
            client.offer(_error("too_many_requests"))
            return
        if not isinstance(init_data, str):
            client.offer(_error("unauthorized"))
            return
        try:
            client.user = await authenticate(request.app, init_data)
        except AppError as exc:
            client.offer(_error(exc.code))
        return
    if op not in ("subscribe", "unsubscribe"):
        client.offer(_error("unknown_op"))
        return
    on = op == "subscribe"
    if channel == "alerts":
        if on and (client.user is None or not limits(client.user.tier).updates):
            client.offer(_error("tier_required"))
            return
        hub.subscribe_alerts(client, on)
    elif channel == "candles":
        symbol = command.get("symbol")
        if not isinstance(symbol, str) or symbol not in await request.app[keys.UNIVERSE].assets():
            client.offer(_error("unknown_symbol"))
            return
        if on and symbol not in client.symbols and len(client.symbols) >= MAX_SYMBOLS:
            client.offer(_error("too_many_symbols"))
            return
        hub.subscribe_candles(client, symbol, on)
    else:
        client.offer(_error("unknown_channel"))


async def _read_loop(request: web.Request, hub: LiveHub, client: LiveClient) -> None:
    async for message in client.ws:
        if message.type == WSMsgType.TEXT:
            await _command(request, hub, client, message.data)
        elif message.type == WSMsgType.BINARY:
            client.offer(_error("text_only"))


def _check_origin(request: web.Request) -> None:
    """Cross-site WebSocket hijacking: a page elsewhere opening /ws rides the session cookie.
    A browser always sends Origin on a WebSocket handshake; a client without one is no browser
    and holds the cookie itself."""
    origin = request.headers.get("Origin")
    cookie_session = "Authorization" not in request.headers and web_session.COOKIE in request.cookies
    if cookie_session and origin is not None and not trusted_origin(request, origin):
        log.warning("ws handshake from a foreign origin refused", extra={"origin": origin[:100]})
        raise Forbidden("this origin may not open the live socket with a session cookie")


async def live_socket(request: web.Request) -> web.WebSocketResponse:
    """The live WebSocket: alerts (elite) and candle updates."""
    hub = request.app[LIVE_HUB]
    _check_origin(request)
    # Uncompressed: the hub writes each message's one encoded frame to every socket.
    ws = web.WebSocketResponse(heartbeat=hub.heartbeat, max_msg_size=MAX_MESSAGE, compress=False)
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # the peer left during the handshake
        return ws
    client = hub.new_client(ws, transport, current_user(request))
    tasks = {
        asyncio.create_task(_read_loop(request, hub, client)),
        asyncio.create_task(client.dropped.wait()),
    }
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.remove(client)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task
        slow = client.dropped.is_set()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await asyncio.wait_for(
                ws.close(
                    code=WSCloseCode.POLICY_VIOLATION if slow else WSCloseCode.OK,
                    message=b"too slow" if slow else b"",
                ),
                CLOSE_TIMEOUT,
            )
    return ws
