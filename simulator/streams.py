"""WebSocket market streams: connections, subscriptions, and the publisher that feeds them.

One serialized frame per stream and tick is shared by every connection subscribed to it (raw
and combined variants are built once each). Each connection has its own outgoing queue and
writer task, so one slow client never holds up the others.

Requests are answered as Binance answers them (USDⓈ-M "Live Subscribing/Unsubscribing to
streams"): `{"result": null, "id": 1}` for SUBSCRIBE, UNSUBSCRIBE and SET_PROPERTY, the list of
streams for LIST_SUBSCRIPTIONS, and `{"error": {"code": 2, "msg": "Invalid request: ..."}, "id": 1}`
for a bad one (code 0 unknown property, 1 not a boolean, 2 bad request, 3 not JSON; `id` is null
when the request has no usable id). A SUBSCRIBE naming a stream type Binance has but the
simulator does not serve (aggTrade, depth, bookTicker, ...) gets the same `invalid stream` error.
A connection carries at most 1024 streams and is closed (1008) beyond 10 incoming messages per
second, pings and pongs included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from .clock import SimClock
from .faults import Faults, malformed_frames
from .market import INTERVALS, Market
from .payloads import kline_event, mark_price_event, streams_status
from .universe import MINUTE_MS, SymbolInfo

log = logging.getLogger("volspike.sim")

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
WARM_BUDGET_MINUTES = 1500  # per tick: minutes of history aggregated for long in-progress candles
MARK_ALL = {"!markPrice@arr@1s": 1, "!markPrice@arr": 3}
_INTERVAL = "(1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)"
VALID_STREAM = re.compile(
    r"!(markPrice@arr(@1s)?|ticker@arr|miniTicker@arr|bookTicker|forceOrder@arr|contractInfo|assetIndex@arr)"
    r"|[^\s@/!]+@(aggTrade|markPrice(@1s)?|kline_"
    + _INTERVAL
    + r"|continuousKline_"
    + _INTERVAL
    + r"|miniTicker|ticker|bookTicker|forceOrder|depth(5|10|20)?(@(100ms|250ms|500ms))?|assetIndex(@1s)?)"
)
"""Stream names Binance accepts; anything else is answered `Invalid request: invalid stream`."""


class BinaryFrame(bytes):
    """Queued bytes to send as a binary websocket frame (every other frame is text)."""


class Connection:
    def __init__(self, cid: int, ws: web.WebSocketResponse, request: web.Request, combined: bool) -> None:
        self.id = cid
        self.ws = ws
        self.request = request
        self.path = request.path_qs
        self.combined = combined
        self.streams: dict[str, None] = {}  # insertion-ordered set
        self.queue: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.frames_sent = 0
        self.connected_at = time.time()
        self.incoming: deque[float] = deque()
        self.connected_monotonic = time.monotonic()
        self.last_ping = 0.0
        self.last_pong = self.connected_monotonic
        self.closing = False

    def enqueue(self, frame: bytes) -> None:
        self.queue.append(frame)
        self.wake.set()

    async def writer(self) -> None:
        ws = self.ws
        queue = self.queue
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while queue:
                    frame = queue.popleft()
                    kind = WSMsgType.BINARY if frame.__class__ is BinaryFrame else WSMsgType.TEXT
                    await ws.send_frame(frame, kind)
                    self.frames_sent += 1
        except (ConnectionError, RuntimeError):
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake."""
        self.closing = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "combined": self.combined,
            "subscriptions": list(self.streams),
            "framesSent": self.frames_sent,
            "queued": len(self.queue),
            "connectedAt": self.connected_at,
        }


@dataclass(slots=True)
class _KlineStream:
    info: SymbolInfo
    interval: str
    span_ms: int
    last_open: int | None = None  # open time of the last in-progress candle sent
    phase: int = 0  # which share of the update interval sends this stream (stable per name)


@dataclass(slots=True)
class _MarkStream:
    every: int  # seconds
    info: SymbolInfo | None  # None: all symbols (array)
    last: dict[str, str] = field(default_factory=dict)  # symbol -> last mark price sent


def _error(rid: int | None, code: int, msg: str) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": rid}


def parse_stream(market: Market, name: str) -> _KlineStream | _MarkStream | None:
    """What a stream name carries (None: a name the sim accepts but has no data for)."""
    if name in MARK_ALL:
        return _MarkStream(MARK_ALL[name], None)
    symbol, _, rest = name.partition("@")
    info = market.by_stream_symbol(symbol)
    if info is None:
        return None
    if rest.startswith("kline_"):
        interval = rest[len("kline_") :]
        if interval in INTERVALS:
            return _KlineStream(
                info, interval, INTERVALS[interval] * MINUTE_MS, phase=zlib.crc32(name.encode())
            )
        return None
    if rest == "markPrice":
        return _MarkStream(3, info)
    if rest == "markPrice@1s":
        return _MarkStream(1, info)
    return None


def implemented(name: str) -> bool:
    """Whether the simulator serves this stream type (kline_<interval>, markPrice[@1s], the
    all-market mark price array); the symbol is not checked, as Binance does not check it."""
    if name in MARK_ALL:
        return True
    _, _, rest = name.partition("@")
    if rest.startswith("kline_"):
        return rest[len("kline_") :] in INTERVALS
    return rest in ("markPrice", "markPrice@1s")


class Hub:
    """Connections and who is subscribed to what; builds and fans out frames."""

    def __init__(
        self,
        market: Market,
        clock: SimClock,
        faults: Faults,
        *,
        update_interval: float = 0.25,
        update_phases: int = 10,
        late_close_probability: float = 0.0,
        late_close_max_delay: float = 1.0,
        max_streams: int = 1024,
        max_incoming_per_second: int = 10,
        max_queued_frames: int = 200_000,
        ping_interval: float = 180.0,
        pong_timeout: float = 600.0,
        seed: int = 0,
    ) -> None:
        self.market = market
        self.clock = clock
        self.faults = faults
        self.update_interval = update_interval
        self.update_phases = max(1, update_phases)
        self.late_close_probability = late_close_probability
        self.late_close_max_delay = late_close_max_delay
        self.max_streams = max_streams
        self.max_incoming_per_second = max_incoming_per_second
        self.max_queued_frames = max_queued_frames
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.connections: dict[int, Connection] = {}
        self.subs: dict[str, set[Connection]] = {}
        self._streams: dict[str, _KlineStream | _MarkStream | None] = {}
        self._next_id = 1
        self._version = market.version
        self._rng = random.Random(seed)
        self._late: set[asyncio.TimerHandle] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.frames_built = 0
        self.frames_sent_closed = 0  # frames sent on connections that are gone
        self.ticks = 0
        self.max_tick_seconds = 0.0

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._kline_loop(), name="sim-klines"),
            asyncio.create_task(self._mark_loop(), name="sim-mark"),
            asyncio.create_task(self._ping_loop(), name="sim-ping"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for handle in self._late:
            handle.cancel()
        self._late.clear()
        conns = list(self.connections.values())
        if conns:
            await asyncio.gather(*(self._close(c, 1001, b"server shutdown") for c in conns))

    async def _close(self, conn: Connection, code: int, message: bytes) -> None:
        conn.closing = True
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=message), 1.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            conn.abort()

    # ----------------------------------------------------------------- connections
    def add(self, ws: web.WebSocketResponse, request: web.Request, combined: bool) -> Connection:
        conn = Connection(self._next_id, ws, request, combined)
        self._next_id += 1
        self.connections[conn.id] = conn
        return conn

    def remove(self, conn: Connection) -> None:
        if self.connections.pop(conn.id, None) is not None:
            self.frames_sent_closed += conn.frames_sent
        for name in conn.streams:
            subscribers = self.subs.get(name)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    self._forget(name)
        conn.streams.clear()

    def _forget(self, name: str) -> None:
        self.subs.pop(name, None)
        self._streams.pop(name, None)

    def subscribe(self, conn: Connection, names: list[str]) -> None:
        for name in names:
            if name in conn.streams:
                continue
            conn.streams[name] = None
            subscribers = self.subs.get(name)
            if subscribers is None:
                subscribers = self.subs[name] = set()
                self._streams[name] = parse_stream(self.market, name)
            subscribers.add(conn)

    def unsubscribe(self, conn: Connection, names: list[str]) -> None:
        for name in names:
            if name not in conn.streams:
                continue
            del conn.streams[name]
            subscribers = self.subs.get(name)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    self._forget(name)

    # ----------------------------------------------------------------- faults
    def drop_all(self) -> int:
        conns = list(self.connections.values())
        for conn in conns:
            conn.abort()
        return len(conns)

    def forget(self, name: str | None = None) -> int:
        """Fault: silently drop a subscription (every one with `name`, else each connection's
        first stream) as if the exchange lost it: no frames, and LIST_SUBSCRIPTIONS leaves it out."""
        forgotten = 0
        for conn in list(self.connections.values()):
            target = name if name is not None else next(iter(conn.streams), None)
            if target is not None and target in conn.streams:
                self.unsubscribe(conn, [target])
                forgotten += 1
        return forgotten

    def send_raw(self, frames: list[bytes | str]) -> int:
        """Send `frames` as they are on every live connection: `str` as text frames, `bytes` as
        binary frames. Returns the connection count."""
        conns = list(self.connections.values())
        for conn in conns:
            for frame in frames:
                conn.enqueue(frame.encode() if isinstance(frame, str) else BinaryFrame(frame))
        return len(conns)

    def send_malformed(self, count: int) -> int:
        conns = list(self.connections.values())
        for conn in conns:
            first = next(iter(conn.streams), None)
            for frame in malformed_frames(count, first, conn.combined):
                conn.enqueue(frame)
        return len(conns)

    # ----------------------------------------------------------------- requests
    def allow_incoming(self, conn: Connection) -> bool:
        """Binance: more than N incoming messages per second closes the connection."""
        now = time.monotonic()
        incoming = conn.incoming
        incoming.append(now)
        while incoming and incoming[0] <= now - 1.0:
            incoming.popleft()
        return len(incoming) <= self.max_incoming_per_second

    def handle_request(self, conn: Connection, text: str) -> dict[str, Any]:
        """One client message (SUBSCRIBE, ...) -> the reply, Binance-shaped."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            return _error(None, 3, f"Invalid JSON: {e.msg} at line {e.lineno} column {e.colno}")
        if not isinstance(msg, dict):
            return _error(None, 2, "Invalid request: expected a JSON object")
        rid = msg.get("id")
        if isinstance(rid, bool) or not isinstance(rid, int) or not 0 <= rid < 2**64:
            return _error(None, 2, "Invalid request: request ID must be an unsigned integer")
        method = msg.get("method")
        if method is None:
            return _error(rid, 2, "Invalid request: missing field `method`")
        if method not in METHODS:
            expected = ", ".join(f"`{m}`" for m in METHODS)
            return _error(rid, 2, f"Invalid request: unknown variant `{method}`, expected one of {expected}")
        params = msg.get("params")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params):
                return _error(rid, 2, "Invalid request: `params` must be an array of stream names")
            if not all(VALID_STREAM.fullmatch(p) for p in params):
                return _error(rid, 2, "Invalid request: invalid stream")
            if method == "SUBSCRIBE" and not all(implemented(p) for p in params):
                # A stream Binance has but the simulator does not serve: refused the way Binance
                # refuses a stream it does not know, so a client never waits on silence.
                return _error(rid, 2, "Invalid request: invalid stream")
            if method == "SUBSCRIBE":
                new = {p for p in params if p not in conn.streams}
                if len(conn.streams) + len(new) > self.max_streams:
                    return _error(
                        rid,
                        2,
                        f"Invalid request: too many streams; a connection can listen to "
                        f"at most {self.max_streams} streams",
                    )
                self.subscribe(conn, params)
            else:
                self.unsubscribe(conn, params)
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            if params:
                return _error(rid, 2, "Invalid request: too many parameters")
            return {"result": list(conn.streams), "id": rid}
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            return _error(rid, 2, "Invalid request: property name must be a string")
        if len(params) > (1 if method == "GET_PROPERTY" else 2):
            return _error(rid, 2, "Invalid request: too many parameters")
        if params[0] != "combined":
            return _error(rid, 0, "Unknown property")
        if method == "GET_PROPERTY":
            return {"result": conn.combined, "id": rid}
        if len(params) != 2 or not isinstance(params[1], bool):
            return _error(rid, 1, "Invalid value type: expected Boolean")
        conn.combined = params[1]
        return {"result": None, "id": rid}

    # ----------------------------------------------------------------- publishing
    def _deliver(self, name: str, raw: bytes) -> None:
        subscribers = self.subs.get(name)
        if not subscribers:
            return
        combined: bytes | None = None
        limit = self.max_queued_frames
        for conn in subscribers:
            if conn.closing:
                continue
            if conn.combined:
                if combined is None:
                    combined = b'{"stream":' + orjson.dumps(name) + b',"data":' + raw + b"}"
                conn.enqueue(combined)
            else:
                conn.enqueue(raw)
            if len(conn.queue) > limit:
                log.warning("sim: dropping a client that is %d frames behind", len(conn.queue))
                conn.abort()

    def _deliver_late(self, handle_box: list[asyncio.TimerHandle], name: str, raw: bytes) -> None:
        if handle_box:
            self._late.discard(handle_box[0])
        self._deliver(name, raw)

    def publish_klines(self, phase: int | None = None) -> None:
        """One tick: an in-progress frame per subscribed kline stream, plus the closing frame
        (x: true) of the candle that ended since the previous tick. With `phase`, only the
        streams of that phase (a stable share of 1/`update_phases`): the timer spreads the
        streams over the update interval, as the exchange's per-stream updates are spread,
        instead of sending every symbol in one burst."""
        now = self.clock.now_ms()
        self.market.apply_due(now)
        if self.faults.silent():
            return
        loop = asyncio.get_running_loop()
        market = self.market
        budget = WARM_BUDGET_MINUTES
        if market.version != self._version:  # listings changed: streams named before may exist now
            self._version = market.version
            for name, known in list(self._streams.items()):
                if known is None:
                    self._streams[name] = parse_stream(market, name)
        phases = self.update_phases
        for name, stream in list(self._streams.items()):
            if not isinstance(stream, _KlineStream):
                continue
            if phase is not None and stream.phase % phases != phase:
                continue
            info = stream.info
            live = streams_status(info, now)
            current = now // stream.span_ms * stream.span_ms
            last = stream.last_open
            if last is not None and last < current:
                closed = market.candle(info.symbol, stream.interval, last, now)
                stream.last_open = None
                if closed is not None:
                    raw = orjson.dumps(kline_event(info, closed, stream.interval, True, now))
                    self.frames_built += 1
                    if live and self._rng.random() < self.late_close_probability:
                        box: list[asyncio.TimerHandle] = []
                        delay = self._rng.uniform(0.05, self.late_close_max_delay)
                        handle = loop.call_later(delay, self._deliver_late, box, name, raw)
                        box.append(handle)
                        self._late.add(handle)
                    else:
                        self._deliver(name, raw)
            if not live:
                continue
            if stream.span_ms > MINUTE_MS:
                if budget <= 0:
                    continue  # long candles still to compute: their first frame comes next tick
                warm, used = market.warm(info.symbol, stream.interval, current, now, budget)
                budget -= used
                if not warm:
                    continue
            candle = market.candle(info.symbol, stream.interval, current, now)
            if candle is None:
                continue
            self._deliver(name, orjson.dumps(kline_event(info, candle, stream.interval, False, now)))
            self.frames_built += 1
            stream.last_open = current

    def publish_marks(self, tick: int) -> None:
        if self.faults.silent():
            return
        now = self.clock.now_ms()
        market = self.market
        for name, stream in list(self._streams.items()):
            if not isinstance(stream, _MarkStream) or tick % stream.every:
                continue
            if stream.info is not None:
                if streams_status(stream.info, now):
                    self._deliver(name, orjson.dumps(mark_price_event(market, stream.info, now)))
                    self.frames_built += 1
                continue
            events = []
            last = stream.last
            for info in market.symbols():
                # the all-market stream leaves TradFi contracts out, as Binance does
                if info.contract_type == "TRADIFI_PERPETUAL" or not streams_status(info, now):
                    continue
                event = mark_price_event(market, info, now)
                if last.get(info.symbol) != event["p"]:
                    last[info.symbol] = event["p"]
                    events.append(event)
            if events:
                self._deliver(name, orjson.dumps(events))
                self.frames_built += 1

    async def _kline_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        phase = 0
        while True:
            started = loop.time()
            try:
                self.publish_klines(phase)
            except Exception:
                log.exception("sim: kline tick failed")
            phase = (phase + 1) % self.update_phases
            if phase == 0:
                self.ticks += 1
            self.max_tick_seconds = max(self.max_tick_seconds, loop.time() - started)
            next_at += self.update_interval / self.update_phases
            delay = next_at - loop.time()
            if delay < 0:  # fell behind: do not try to catch up with a burst
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    async def _mark_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        tick = 0
        while True:
            try:
                self.publish_marks(tick)
            except Exception:
                log.exception("sim: mark price tick failed")
            tick += 1
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(min(self.ping_interval, 5.0))
            now = time.monotonic()
            for conn in list(self.connections.values()):
                if conn.closing:
                    continue
                if conn.last_ping > conn.last_pong and now - conn.last_ping > self.pong_timeout:
                    log.info("sim: dropping connection %d: no pong", conn.id)
                    conn.abort()
                    continue
                if now - max(conn.last_ping, conn.connected_monotonic) >= self.ping_interval:
                    if self.faults.silent():
                        continue
                    conn.last_ping = now
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await conn.ws.ping(b"")
