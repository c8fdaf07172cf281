"""SimServer: REST and WebSocket on one port, plus the Python API to drive it from tests."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from types import TracebackType
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from .clock import SimClock
from .config import SimConfig
from .control import control_routes
from .faults import Faults
from .market import Market, SpikeInfo
from .rest import RestApi, WeightLimiter, json_response
from .streams import Hub
from .universe import MINUTE_MS, SymbolInfo, build_universe

log = logging.getLogger("volspike.sim")

WS_PREFIXES = ("/market", "/public", "")  # Binance routes market streams under /market since 2026


class SimServer:
    """A Binance USDⓈ-M compatible exchange on 127.0.0.1.

    >>> sim = SimServer(SimConfig(symbols=3, seed=7))
    >>> await sim.start(); ...; await sim.stop()      # or: async with SimServer(...) as sim:
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = cfg = config or SimConfig()
        self.clock = SimClock(cfg.start_time_ms, cfg.speed)
        symbols = build_universe(cfg.seed, cfg.symbols, self.clock.start_ms, special=cfg.special_symbols)
        self.market = Market(cfg.seed, symbols, natural_spike_rate=cfg.natural_spike_rate)
        for spike in cfg.spikes:
            self.schedule_spike(
                spike.symbol,
                spike.multiple,
                at_ms=spike.at_ms,
                minute_offset=spike.minute_offset,
                min_quote_volume=spike.min_quote_volume,
            )
        self.faults = Faults()
        self.limiter = WeightLimiter(
            cfg.weight_limit, ban_after=cfg.ban_after_violations, ban_seconds=cfg.ban_seconds
        )
        self.rest = RestApi(self.market, self.clock, self.faults, self.limiter, log_size=cfg.request_log_size)
        self.hub = Hub(
            self.market,
            self.clock,
            self.faults,
            update_interval=cfg.update_interval,
            update_phases=cfg.update_phases,
            late_close_probability=cfg.late_close_probability,
            late_close_max_delay=cfg.late_close_max_delay,
            max_streams=cfg.max_streams_per_connection,
            max_incoming_per_second=cfg.max_incoming_per_second,
            max_queued_frames=cfg.max_queued_frames,
            ping_interval=cfg.ping_interval,
            pong_timeout=cfg.pong_timeout,
            seed=cfg.seed,
        )
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self.rest.middleware])
        app.add_routes(self.rest.routes())
        app.add_routes(control_routes(self))
        for prefix in WS_PREFIXES:
            app.router.add_get(f"{prefix}/ws", self._ws_raw)
            app.router.add_get(f"{prefix}/ws/{{streams:.+}}", self._ws_raw)
            app.router.add_get(f"{prefix}/stream", self._ws_combined)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("already started")
        if self.config.warm_day:
            await self.warm_day()
        runner = web.AppRunner(self._app(), handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.config.host, self.config.port))
        except OSError:
            sock.close()
            await runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self.hub.start()
        log.debug("sim started on %s", self.rest_url)

    async def warm_day(self) -> None:
        """Compute and cache the last 24 hours of every trading symbol (what `ticker/24hr` sums)."""
        started = time.monotonic()
        now = self.clock.now_ms()
        self.market.apply_due(now)
        symbols = [i.symbol for i in self.market.symbols() if i.trades_at(now - 1)]
        log.info("sim computing the last 24 hours of %d symbols", len(symbols))
        await asyncio.to_thread(self.market.warm_day, symbols, now)
        log.info("sim warmed in %.1f s", time.monotonic() - started)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await self.hub.stop()
        await runner.cleanup()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sim is not started")
        return self._port

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    # ------------------------------------------------------------------ WebSocket endpoints
    async def _ws_raw(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info.get("streams", "")
        return await self._serve_ws(request, [s for s in raw.split("/") if s], combined=False)

    async def _ws_combined(self, request: web.Request) -> web.StreamResponse:
        raw = request.query.get("streams", "")
        return await self._serve_ws(request, [s for s in raw.split("/") if s], combined=True)

    async def _serve_ws(
        self, request: web.Request, streams: list[str], *, combined: bool
    ) -> web.StreamResponse:
        if self.faults.ws_refused():
            return json_response({"code": -1008, "msg": "Service unavailable, please try again."}, status=503)
        hub = self.hub
        if len(set(streams)) > hub.max_streams:
            return json_response(
                {"code": -1, "msg": f"A connection can listen to at most {hub.max_streams} streams."},
                status=400,
            )
        await self.faults.pass_handshake()
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = hub.add(ws, request, combined)
        hub.subscribe(conn, streams)
        writer = asyncio.create_task(conn.writer(), name=f"sim-ws-writer-{conn.id}")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
                if not hub.allow_incoming(conn):  # text, binary, pings and pongs all count
                    log.info(
                        "sim: closing connection %d: more than %d messages per second",
                        conn.id,
                        hub.max_incoming_per_second,
                    )
                    conn.closing = True
                    await ws.close(code=1008, message=b"Too many requests")
                    break
                if msg.type == WSMsgType.TEXT or msg.type == WSMsgType.BINARY:
                    text = msg.data if isinstance(msg.data, str) else msg.data.decode("utf-8", "replace")
                    conn.enqueue(orjson.dumps(hub.handle_request(conn, text)))
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    conn.last_pong = time.monotonic()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            hub.remove(conn)
            writer.cancel()
            await asyncio.wait([writer])
            if not ws.closed and not conn.closing:
                await ws.close()
        return ws

    # ------------------------------------------------------------------ Python API: market and clock
    def now_ms(self) -> int:
        return self.clock.now_ms()

    def advance(self, seconds: float) -> int:
        """Jump the sim clock forward. The skipped minutes exist in REST history; streams send the
        closing frame of the candle that was in progress, then frames for the new minute."""
        now = self.clock.advance(seconds)
        self.market.apply_due(now)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return now
        if self._runner is not None:
            self.hub.publish_klines()
        return now

    def trigger_spike(self, symbol: str, multiple: float, *, min_quote_volume: float = 0.0) -> SpikeInfo:
        """Now: the current hour's quote volume reaches >= ``multiple`` x the previous closed hour
        (and >= ``min_quote_volume``) within a few seconds."""
        return self.market.trigger_spike(
            symbol, multiple, self.clock.now_ms(), min_quote_volume=min_quote_volume
        )

    def schedule_spike(
        self,
        symbol: str,
        multiple: float,
        *,
        at_ms: int | None = None,
        minute_offset: float | None = None,
        min_quote_volume: float = 0.0,
    ) -> int:
        """A spike that fires when the sim clock reaches ``at_ms`` (or start + ``minute_offset``)."""
        if at_ms is None:
            if minute_offset is None:
                raise ValueError("give at_ms or minute_offset")
            at_ms = self.clock.start_ms + int(minute_offset * MINUTE_MS)
        self.market.schedule_spike(symbol, multiple, at_ms, min_quote_volume=min_quote_volume)
        return at_ms

    def list_symbol(
        self,
        symbol: str,
        *,
        ref_price: float | None = None,
        hourly_quote: float | None = None,
        onboard_ms: int | None = None,
    ) -> SymbolInfo:
        """List a new perpetual, trading from ``onboard_ms`` (default now: no history yet)."""
        onboard = self.clock.now_ms() if onboard_ms is None else onboard_ms
        return self.market.list_symbol(symbol, onboard, ref_price=ref_price, hourly_quote=hourly_quote)

    def delist_symbol(self, symbol: str, *, at_ms: int | None = None) -> SymbolInfo:
        return self.market.delist_symbol(symbol, self.clock.now_ms(), at_ms)

    # ------------------------------------------------------------------ Python API: faults
    def drop_connections(self, *, refuse_seconds: float = 0.0) -> int:
        """Abort every WebSocket (no close frame); refuse new ones for ``refuse_seconds``."""
        if refuse_seconds > 0:
            self.faults.refuse_ws(refuse_seconds)
        return self.hub.drop_all()

    def refuse_connections(self, seconds: float) -> None:
        self.faults.refuse_ws(seconds)

    def fail_rest(self, count: int, *, retry_after: int = 1, status: int = 429) -> None:
        """Answer the next ``count`` REST requests with ``status`` (429/418) and ``Retry-After``."""
        self.faults.fail_rest(count, retry_after=retry_after, status=status)

    def fault_path(
        self, path: str, *, stall: float = 0.0, status: int | None = None, count: int = 1 << 30
    ) -> None:
        """Stall ``stall`` seconds and/or answer ``status`` to the next ``count`` requests to ``path``
        (e.g. ``/futures/data/openInterestHist``); ``count=0`` clears it."""
        self.faults.fault_path(path, stall=stall, status=status, count=count)

    def send_malformed(self, count: int) -> int:
        """Send ``count`` malformed frames on every live connection; returns the connection count."""
        return self.hub.send_malformed(count)

    def send_raw(self, frames: list[bytes | str]) -> int:
        """Send ``frames`` verbatim on every live connection (``str`` as text, ``bytes`` as binary)."""
        return self.hub.send_raw(frames)

    def forget_subscription(self, stream: str | None = None) -> int:
        """The exchange loses a subscription: ``stream`` on every connection that has it (else each
        connection's first stream) stops sending and leaves LIST_SUBSCRIPTIONS; returns how many."""
        return self.hub.forget(stream)

    def hold_handshakes(self) -> None:
        """WebSocket handshakes wait (the client sits in its opening handshake) until released."""
        self.faults.hold_handshakes()

    def release_handshakes(self, *, keep_holding: bool = False) -> int:
        """Let the waiting handshakes complete; with ``keep_holding`` later ones wait again."""
        return self.faults.release_handshakes(keep_holding=keep_holding)

    @property
    def held_handshakes(self) -> int:
        return self.faults.held_handshakes

    def go_silent(self, seconds: float) -> None:
        """No frames (data or pings) on any WebSocket for ``seconds``; connections stay open."""
        self.faults.silence(seconds)

    # ------------------------------------------------------------------ observation
    def request_log(self, path: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.rest.log if path is None or e["path"] == path]

    def clear_request_log(self) -> None:
        self.rest.log.clear()

    def stats(self) -> dict[str, Any]:
        conns = [c.as_dict() for c in self.hub.connections.values()]
        return {
            "serverTime": self.clock.now_ms(),
            "connections": conns,
            "connectionCount": len(conns),
            "streams": len(self.hub.subs),
            "framesSent": self.hub.frames_sent_closed + sum(c["framesSent"] for c in conns),
            "framesBuilt": self.hub.frames_built,
            "ticks": self.hub.ticks,
            "maxTickSeconds": round(self.hub.max_tick_seconds, 4),
            "usedWeight": self.limiter.used,
            "symbols": len(self.market.symbols()),
            "pendingSpikes": self.market.pending_spikes,
            "heldHandshakes": self.faults.held_handshakes,
        }
