"""Combined-stream websocket connections to Binance USDⓈ-M market streams.

Binance serves market streams on `<BINANCE_WS_URL>/market/stream?streams=a/b/c` (since
2026-04-23 the legacy `/ws` and `/stream` paths are silent for them). Each connection carries
at most `max_streams` streams: one `<symbol lower>@kline_1m` per symbol, plus
`!markPrice@arr@1s` on the first.

A connection keeps two sets: the streams it wants, and the streams the exchange holds on its
open socket (those of the URL it connected with, then every SUBSCRIBE/UNSUBSCRIBE it sent). A
sync loop per socket sends the difference, paced well under Binance's 10 incoming messages per
second (pings and pongs count too), so a change made at any moment reaches the wire: during the
handshake, during the 23 h rotation hand-over (the successor's URL was built before the change),
during a reconnect's backoff. Every `reconcile_interval` the loop asks the exchange for its set
(`LIST_SUBSCRIPTIONS`), takes the answer as the truth and repairs any difference: a subscription
the exchange forgot is counted (`volspike_ingest_ws_subscription_repairs`), logged and sent again.

Each connection reconnects by itself with exponential backoff and jitter (capped), is
replaced before Binance's 24-hour cut (the new socket opens before the old one closes), and
is reconnected by a watchdog when no message came for `silence_timeout`. A reconnect reports
the symbols whose data may have a gap (`on_reopen`) so the service backfills them. One
connection failing never stalls the others: each runs in its own task.

Every frame goes through `ingest.parsers.parse_frame`; a malformed one is counted and logged
(at most once per `log_every` seconds per connection), never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from core.tasks import raise_if_cancelling
from ingest import metrics
from ingest.parsers import ControlReply, Ignored, Kline, MarkPrices, ParseError, Tickers, parse_frame

log = logging.getLogger(__name__)

MARK_PRICE_STREAM = "!markPrice@arr@1s"
DataFrame = Kline | MarkPrices | Tickers
FrameSink = Callable[[DataFrame, float], None]
"""Receives every data frame with its receive time (time.perf_counter()); must not block. A
sink that detects an alert presses the `ReadPacer`: readers step aside before their next frame."""

ReopenHandler = Callable[["StreamConnection", list[str], int | None], None]
"""(connection, symbols on it, last event time seen before the drop) after a reconnect."""

READ_SLICE = 0.0005
"""Seconds a reader may run frames back to back before it yields to the event loop. A burst
of hundreds of buffered frames would otherwise hold the loop for milliseconds, and an alert's
INSERT answer (or another connection) would wait behind it."""

MAX_PAUSE = 0.02
"""Longest time readers hold back for alerts being saved, per episode (PostgreSQL slow or down)."""


class ReadPacer:
    """Shared by every connection: when readers yield to the event loop.

    Normally after `read_slice` seconds of frames. From the moment an alert is detected until
    its row is saved (`press()` … `release()`), readers stop taking frames (they wait in the
    socket buffers) so that the alert's round trip to PostgreSQL has the event loop and the CPU
    to itself; at most `max_pause` seconds per episode, then they go on frame by frame.
    Kept: without it every interleaved run's detection p50 was higher (docs/benchmarks.md)."""

    def __init__(self, read_slice: float = READ_SLICE, max_pause: float = MAX_PAUSE) -> None:
        self.read_slice = read_slice
        self.max_pause = max_pause
        self.urgent = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._deadline = 0.0

    def press(self) -> None:
        if self.urgent == 0:
            self._idle.clear()
            self._deadline = time.monotonic() + self.max_pause
        self.urgent += 1

    def release(self) -> None:
        self.urgent = max(0, self.urgent - 1)
        if self.urgent == 0:
            self._idle.set()

    async def step_aside(self) -> None:
        """Called by a reader while `urgent`: wait until released (bounded), or just yield."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await self._idle.wait()


_CONNECT_ERRORS = (OSError, TimeoutError, InvalidHandshake, InvalidURI)


@dataclass(frozen=True, slots=True)
class StreamOptions:
    max_streams: int = 200
    silence_timeout: float = 30.0
    max_lifetime: float = 23 * 3600.0  # Binance cuts every connection at 24 h
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    open_timeout: float = 10.0
    close_timeout: float = 2.0
    control_rate: float = 5.0  # SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS messages per second
    control_batch: int = 100  # streams per SUBSCRIBE message
    reconcile_interval: float = 60.0  # seconds between LIST_SUBSCRIPTIONS checks of a socket
    reply_timeout: float = 10.0  # seconds to wait for the answer to LIST_SUBSCRIPTIONS
    log_every: float = 10.0  # malformed-frame log rate limit, seconds
    tick: float = 0.5  # watchdog resolution, seconds


def kline_stream(symbol: str) -> str:
    return f"{symbol.lower()}@kline_1m"


def stream_url(base_url: str, streams: Iterable[str]) -> str:
    """`<base>/market/stream?streams=a/b`, with non-ASCII stream names percent-encoded (UTF-8)."""
    joined = "/".join(streams)
    return f"{base_url.rstrip('/')}/market/stream?streams={quote(joined, safe='/@!_')}"


@dataclass(eq=False, slots=True)
class _Wire:
    """One open socket and what the exchange holds on it, as far as the requests sent tell.

    `held` starts as the streams of the URL the socket was opened with; the sync loop updates it
    with each request it sends, and replaces it with the exchange's own answer to
    LIST_SUBSCRIPTIONS. Binance refuses a SUBSCRIBE as a whole: the streams of a refused batch
    go to `solo` and are asked for one per request, and a stream refused alone goes to `rejected`,
    not asked again until the next reconciliation. `pending` maps request ids to what they asked."""

    ws: ClientConnection
    held: set[str]
    rejected: set[str] = field(default_factory=set)
    solo: set[str] = field(default_factory=set)
    pending: dict[int, tuple[str, list[str]]] = field(default_factory=dict)
    listing: dict[int, asyncio.Future[ControlReply]] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class StreamConnection:
    """One websocket connection and the streams it should carry."""

    def __init__(
        self,
        conn_id: str,
        base_url: str,
        streams: Iterable[str],
        sink: FrameSink,
        on_reopen: ReopenHandler,
        options: StreamOptions,
        stream_symbols: dict[str, str],
        pacer: ReadPacer | None = None,
    ) -> None:
        self.id = conn_id
        self._pacer = pacer or ReadPacer()
        self._base_url = base_url
        self._streams: dict[str, None] = dict.fromkeys(streams)
        self._sink = sink
        self._on_reopen = on_reopen
        self._opts = options
        self._symbol_of = stream_symbols  # shared with the manager: stream name -> symbol
        self._wires: set[_Wire] = set()  # open sockets (two during a rotation hand-over)
        self._control_id = 0
        self.repairs = 0
        self.state = "closed"
        self.messages = 0
        self.malformed = 0
        self.reconnects = 0
        self.opened_once = False
        self.last_message_at: float | None = None  # time.monotonic()
        self.last_event_ms: int | None = None
        self.lag_ms: float | None = None
        self.connected_at: float | None = None
        self._last_malformed_log = 0.0
        self._state_metric = metrics.WS_STATE.labels(conn_id)
        self._messages_metric = metrics.WS_MESSAGES.labels(conn_id)
        self._streams_metric = metrics.WS_STREAMS.labels(conn_id)
        self._streams_metric.set(len(self._streams))
        self._state_metric.set(metrics.CONNECTION_STATES["closed"])

    # --- desired streams -------------------------------------------------------------

    @property
    def streams(self) -> list[str]:
        return list(self._streams)

    @property
    def room(self) -> int:
        return self._opts.max_streams - len(self._streams)

    def symbols(self) -> list[str]:
        return [self._symbol_of[s] for s in self._streams if s in self._symbol_of]

    def subscribe(self, streams: Iterable[str]) -> None:
        new = [s for s in streams if s not in self._streams]
        if not new:
            return
        self._streams.update(dict.fromkeys(new))
        self._streams_metric.set(len(self._streams))
        self._changed()

    def unsubscribe(self, streams: Iterable[str]) -> None:
        gone = [s for s in streams if s in self._streams]
        if not gone:
            return
        for s in gone:
            del self._streams[s]
        self._streams_metric.set(len(self._streams))
        self._changed()

    def _changed(self) -> None:
        """Wake the sync loop of every open socket; a socket still in its handshake compares
        its URL's streams with the wanted set as soon as it opens."""
        for wire in self._wires:
            wire.wake.set()

    # --- life cycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, read, reconnect; forever until cancelled."""
        wire: _Wire | None = None
        attempt = 0
        try:
            while True:
                raise_if_cancelling()
                if wire is None:
                    self._set_state("connecting")
                    try:
                        wire = await self._open()
                    except _CONNECT_ERRORS as exc:
                        attempt += 1
                        delay = self._backoff(attempt)
                        log.warning(
                            "stream connect failed",
                            extra={
                                "conn": self.id,
                                "attempt": attempt,
                                "retry_in": round(delay, 2),
                                "error": repr(exc),
                            },
                        )
                        self._set_state("closed")
                        await asyncio.sleep(delay)
                        continue
                    if self.opened_once:
                        self.reconnects += 1
                        self._on_reopen(self, self.symbols(), self.last_event_ms)
                    self.opened_once = True
                    log.info("stream connected", extra={"conn": self.id, "streams": len(self._streams)})
                wire, reason = await self._serve(wire)
                if wire is None:
                    metrics.WS_RECONNECTS.labels(self.id, reason).inc()
                    log.warning("stream lost, reconnecting", extra={"conn": self.id, "reason": reason})
                    if reason != "silent" and self.last_message_at is None:
                        attempt += 1  # it never delivered anything: back off
                    else:
                        attempt = 0
                    if attempt:
                        await asyncio.sleep(self._backoff(attempt))
                else:
                    attempt = 0
        finally:
            self._set_state("closed")
            if wire is not None:
                await self._close(wire.ws)

    def _backoff(self, attempt: int) -> float:
        delay = min(self._opts.backoff_cap, self._opts.backoff_base * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)

    async def _connect(self) -> _Wire:
        """Open a socket for the streams wanted now; later changes are sent once it is open."""
        streams = list(self._streams)
        ws = await connect(
            stream_url(self._base_url, streams),
            open_timeout=self._opts.open_timeout,
            close_timeout=self._opts.close_timeout,
            max_size=8 * 2**20,
            compression=None,
            user_agent_header="volspike-ingest",
        )
        return _Wire(ws, set(streams))

    async def _open(self) -> _Wire:
        wire = await self._connect()
        self.connected_at = time.monotonic()
        self.last_message_at = None
        self._set_state("open")
        return wire

    async def _serve(self, wire: _Wire) -> tuple[_Wire | None, str]:
        """Read `wire` until it fails (→ (None, reason)) or is due for replacement (→ (new, ""))."""
        self._wires.add(wire)
        reader = asyncio.create_task(self._read(wire), name=f"ws-read-{self.id}")
        control = asyncio.create_task(self._sync(wire), name=f"ws-control-{self.id}")
        assert self.connected_at is not None
        opened = self.connected_at
        rotate_at = opened + self._opts.max_lifetime
        try:
            while True:
                raise_if_cancelling()
                done, _ = await asyncio.wait({reader, control}, timeout=self._opts.tick)
                if reader in done:
                    return None, reader.result()
                if control in done:
                    control.result()  # re-raise a bug; a closed socket ends the reader too
                    return None, "closed"
                now = time.monotonic()
                last = self.last_message_at if self.last_message_at is not None else opened
                if now - last > self._opts.silence_timeout:
                    return None, "silent"
                if now >= rotate_at:
                    replacement = await self._replace()
                    if replacement is not None:
                        return replacement, ""
                    rotate_at = now + min(60.0, self._opts.max_lifetime)
        finally:
            self._wires.discard(wire)
            for task in (reader, control):
                task.cancel()
            await asyncio.gather(reader, control, return_exceptions=True)
            for future in wire.listing.values():
                future.cancel()
            await self._close(wire.ws)

    async def _replace(self) -> _Wire | None:
        """Open the successor while the current socket keeps being read (make before break).
        Changes made during its handshake reach it through its sync loop."""
        log.info("rotating stream connection before the 24 h cut", extra={"conn": self.id})
        try:
            wire = await self._connect()
        except _CONNECT_ERRORS as exc:
            log.warning(
                "rotation connect failed; keeping the old socket", extra={"conn": self.id, "error": repr(exc)}
            )
            return None
        self.connected_at = time.monotonic()
        metrics.WS_RECONNECTS.labels(self.id, "rotate").inc()
        return wire

    async def _close(self, ws: ClientConnection) -> None:
        with contextlib.suppress(*_CONNECT_ERRORS, ConnectionClosed):
            await ws.close()

    async def _read(self, wire: _Wire) -> str:
        ws = wire.ws
        sink = self._sink
        pacer = self._pacer
        slice_end = time.perf_counter() + pacer.read_slice
        try:
            async for raw in ws:
                received = time.perf_counter()
                if pacer.urgent:  # an alert is being saved: let it go first
                    await pacer.step_aside()
                    slice_end = time.perf_counter() + pacer.read_slice
                elif received >= slice_end:  # the frame's latency counts this yield
                    await asyncio.sleep(0)
                    slice_end = time.perf_counter() + pacer.read_slice
                self.last_message_at = time.monotonic()
                self.messages += 1
                self._messages_metric.inc()
                try:
                    frame = parse_frame(raw)
                except ParseError as exc:
                    self._on_malformed(exc, raw)
                    continue
                if isinstance(frame, Kline | MarkPrices | Tickers):
                    if frame.event_time_ms:
                        if self.last_event_ms is None or frame.event_time_ms > self.last_event_ms:
                            self.last_event_ms = frame.event_time_ms
                        self.lag_ms = time.time() * 1000.0 - frame.event_time_ms
                    sink(frame, received)
                elif isinstance(frame, ControlReply):
                    self._on_reply(wire, frame)
                elif not isinstance(frame, Ignored):  # pragma: no cover - Frame is exhaustive
                    log.debug("unexpected frame", extra={"conn": self.id})
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            return f"closed:{code}" if code is not None else "closed"
        return "closed"

    def _on_malformed(self, exc: ParseError, raw: str | bytes) -> None:
        self.malformed += 1
        metrics.WS_MALFORMED.labels(self.id).inc()
        now = time.monotonic()
        if now - self._last_malformed_log >= self._opts.log_every:
            self._last_malformed_log = now
            sample = raw[:200] if isinstance(raw, str) else raw[:200].decode(errors="replace")
            log.warning(
                "malformed stream frame",
                extra={
                    "conn": self.id,
                    "error": str(exc),
                    "sample": sample,
                    "malformed_total": self.malformed,
                },
            )

    def _on_reply(self, wire: _Wire, reply: ControlReply) -> None:
        """An answer to one of our requests: hand LIST_SUBSCRIPTIONS answers to the sync loop;
        a refused SUBSCRIBE is asked again stream by stream, a stream refused alone is left out
        until the next reconciliation."""
        ident = reply.id if isinstance(reply.id, int) else None
        future = wire.listing.pop(ident, None) if ident is not None else None
        if future is not None:
            if not future.done():
                future.set_result(reply)
            return
        request = wire.pending.pop(ident, None) if ident is not None else None
        if reply.error is None:
            return
        method, streams = request if request is not None else ("?", [])
        log.warning(
            "stream request rejected",
            extra={
                "conn": self.id,
                "id": reply.id,
                "method": method,
                "streams": streams[:10],
                "error": reply.error,
            },
        )
        if method == "SUBSCRIBE":
            wire.held.difference_update(streams)
            if len(streams) > 1:
                wire.solo.update(streams)  # find the culprit: ask for each alone
            else:
                wire.rejected.update(streams)

    async def _sync(self, wire: _Wire) -> None:
        """Make the exchange hold exactly the wanted streams on `wire`, and check it regularly.

        The only sender on the socket: one request at a time, at most `control_rate` per second.
        UNSUBSCRIBE first (it makes room), then SUBSCRIBE, then, when due, LIST_SUBSCRIPTIONS;
        nothing else is sent while its answer is awaited, so the answer is exact."""
        interval = 1.0 / self._opts.control_rate
        size = self._opts.control_batch
        check_at = time.monotonic() + self._opts.reconcile_interval
        while True:
            raise_if_cancelling()
            wire.wake.clear()
            wanted = self._streams
            gone = [s for s in wire.held if s not in wanted]
            new = [s for s in wanted if s not in wire.held and s not in wire.rejected]
            if gone:
                batch = gone[:size]
                if await self._send(wire, "UNSUBSCRIBE", batch) is None:
                    return
                wire.held.difference_update(batch)
            elif new:
                alone = [s for s in new if s in wire.solo]
                batch = alone[:1] if alone else new[:size]
                if await self._send(wire, "SUBSCRIBE", batch) is None:
                    return
                wire.held.update(batch)
            elif time.monotonic() >= check_at:
                if not await self._reconcile(wire):
                    return
                check_at = time.monotonic() + self._opts.reconcile_interval
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, check_at - time.monotonic())):
                        await wire.wake.wait()
                continue
            await asyncio.sleep(interval)

    async def _send(
        self,
        wire: _Wire,
        method: str,
        streams: list[str] | None = None,
        answer: asyncio.Future[ControlReply] | None = None,
    ) -> int | None:
        """Send one request; its id, or None when the socket is closed (its reader sees that too)."""
        self._control_id += 1
        ident = self._control_id
        message: dict[str, object] = {"method": method, "id": ident}
        if streams is not None:
            message["params"] = streams
            wire.pending[ident] = (method, streams)
        if answer is not None:
            wire.listing[ident] = answer
        try:
            await wire.ws.send(orjson.dumps(message).decode())
        except ConnectionClosed:
            return None
        if streams is not None:
            log.info(method.lower(), extra={"conn": self.id, "streams": len(streams)})
        return ident

    async def _reconcile(self, wire: _Wire) -> bool:
        """Ask the exchange which streams it holds on `wire`; repair any difference."""
        future: asyncio.Future[ControlReply] = asyncio.get_running_loop().create_future()
        ident = await self._send(wire, "LIST_SUBSCRIPTIONS", answer=future)
        if ident is None:
            return False
        try:
            async with asyncio.timeout(self._opts.reply_timeout):
                reply = await future
        except TimeoutError:
            wire.listing.pop(ident, None)
            log.warning("no answer to LIST_SUBSCRIPTIONS", extra={"conn": self.id})
            return True
        result = reply.result
        if (
            reply.error is not None
            or not isinstance(result, list)
            or not all(isinstance(s, str) for s in result)
        ):
            log.warning(
                "unusable answer to LIST_SUBSCRIPTIONS",
                extra={"conn": self.id, "error": reply.error, "result": repr(result)[:200]},
            )
            return True
        actual = {unquote(name) for name in result or ()}  # as we name them, if sent encoded
        missing = sorted(wire.held - actual)
        extra = sorted(actual - wire.held)
        wire.held = actual
        wire.rejected.clear()
        if missing or extra:
            self.repairs += len(missing) + len(extra)
            if missing:
                metrics.WS_SUBSCRIPTION_REPAIRS.labels(self.id, "missing").inc(len(missing))
            if extra:
                metrics.WS_SUBSCRIPTION_REPAIRS.labels(self.id, "unexpected").inc(len(extra))
            log.warning(
                "exchange subscriptions differ from ours; repairing",
                extra={
                    "conn": self.id,
                    "missing": missing[:20],
                    "unexpected": extra[:20],
                    "missing_count": len(missing),
                    "unexpected_count": len(extra),
                },
            )
        return True

    def _set_state(self, state: str) -> None:
        self.state = state
        self._state_metric.set(metrics.CONNECTION_STATES[state])

    def snapshot(self) -> dict[str, object]:
        now = time.monotonic()
        age = None if self.last_message_at is None else round(now - self.last_message_at, 3)
        if age is not None:
            metrics.WS_LAST_MESSAGE_AGE.labels(self.id).set(age)
        if self.lag_ms is not None:
            metrics.WS_EVENT_LAG.labels(self.id).set(self.lag_ms / 1000.0)
        return {
            "id": self.id,
            "state": self.state,
            "streams": len(self._streams),
            "messages": self.messages,
            "malformed": self.malformed,
            "reconnects": self.reconnects,
            "subscription_repairs": self.repairs,
            "last_message_age_s": age,
            "lag_ms": None if self.lag_ms is None else round(self.lag_ms, 1),
        }


class StreamManager:
    """Spreads the symbols' streams over connections and keeps them running."""

    def __init__(
        self,
        base_url: str,
        sink: FrameSink,
        on_reopen: ReopenHandler,
        options: StreamOptions | None = None,
        *,
        mark_price: bool = True,
    ) -> None:
        self._base_url = base_url
        self._sink = sink
        self._on_reopen = on_reopen
        self._opts = options or StreamOptions()
        self.pacer = ReadPacer()
        self._mark_price = mark_price
        self._conns: dict[str, StreamConnection] = {}
        self._where: dict[str, StreamConnection] = {}  # stream -> its connection
        self._symbol_of: dict[str, str] = {}  # stream -> symbol
        self._next_id = 0
        self._changed = asyncio.Event()
        self._rates: dict[str, tuple[float, int, float]] = {}  # conn -> (time, messages, msgs/s)

    @property
    def connections(self) -> list[StreamConnection]:
        return list(self._conns.values())

    def symbols(self) -> set[str]:
        return set(self._symbol_of.values())

    def set_symbols(self, symbols: Iterable[str]) -> tuple[list[str], list[str]]:
        """Follow exactly `symbols`; returns (added, removed). Safe before and during `run()`."""
        wanted = {kline_stream(s): s for s in symbols}
        removed_streams = [s for s in self._symbol_of if s not in wanted]
        added_streams = [s for s in wanted if s not in self._symbol_of]
        removed = [self._symbol_of[s] for s in removed_streams]
        by_conn: dict[str, list[str]] = {}
        for stream in removed_streams:
            by_conn.setdefault(self._where[stream].id, []).append(stream)
            del self._where[stream]
            del self._symbol_of[stream]
        for conn_id, streams in by_conn.items():
            conn = self._conns[conn_id]
            conn.unsubscribe(streams)
            if not conn.streams:
                del self._conns[conn_id]
                metrics.forget_connection(conn_id)
        for stream in added_streams:
            self._symbol_of[stream] = wanted[stream]
        if self._mark_price and MARK_PRICE_STREAM not in self._where:
            added_streams.insert(0, MARK_PRICE_STREAM)
        pending = list(added_streams)
        for conn in sorted(self._conns.values(), key=lambda c: c.id):
            if not pending:
                break
            take, pending = pending[: max(0, conn.room)], pending[max(0, conn.room) :]
            if take:
                conn.subscribe(take)
                for stream in take:
                    self._where[stream] = conn
        while pending:
            take, pending = pending[: self._opts.max_streams], pending[self._opts.max_streams :]
            conn = StreamConnection(
                f"c{self._next_id}",
                self._base_url,
                take,
                self._sink,
                self._on_reopen,
                self._opts,
                self._symbol_of,
                self.pacer,
            )
            self._next_id += 1
            self._conns[conn.id] = conn
            for stream in take:
                self._where[stream] = conn
        self._changed.set()
        return [wanted[s] for s in added_streams if s in wanted], removed

    async def run(self) -> None:
        """Run every connection in its own task until cancelled; follows `set_symbols` changes."""
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                raise_if_cancelling()
                self._changed.clear()
                for conn_id, conn in self._conns.items():
                    if conn_id not in tasks:
                        tasks[conn_id] = asyncio.create_task(conn.run(), name=f"ws-{conn_id}")
                for conn_id in [c for c in tasks if c not in self._conns]:
                    task = tasks.pop(conn_id)
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                changed: asyncio.Task[Any] = asyncio.create_task(self._changed.wait())
                waiting: set[asyncio.Task[Any]] = {changed, *tasks.values()}
                try:
                    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
                    await asyncio.gather(changed, return_exceptions=True)
                for task in done:
                    if task is not changed:
                        task.result()  # a connection task only ends by raising: propagate the bug
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    def snapshot(self) -> list[dict[str, object]]:
        now = time.monotonic()
        out = []
        for conn in self._conns.values():
            snap = conn.snapshot()
            before = self._rates.get(conn.id)
            rate = 0.0
            if before is not None and now > before[0]:
                rate = (conn.messages - before[1]) / (now - before[0])
            self._rates[conn.id] = (now, conn.messages, rate)
            snap["msgs_per_s"] = round(rate, 2)
            out.append(snap)
        return out
