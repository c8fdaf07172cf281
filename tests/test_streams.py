"""Websocket stream connections against the simulator over real websockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from ingest.parsers import Kline, MarkPrices
from ingest.streams import DataFrame, ReadPacer, StreamConnection, StreamManager, StreamOptions
from simulator.config import SimConfig
from simulator.server import SimServer

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "币安人生USDT"]


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    try:
        async with asyncio.timeout(timeout):
            while True:
                if predicate():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@dataclass
class Recorder:
    frames: list[DataFrame] = field(default_factory=list)
    reopened: list[tuple[str, list[str], int | None]] = field(default_factory=list)

    def sink(self, frame: DataFrame, received: float) -> None:
        self.frames.append(frame)

    def on_reopen(self, conn: StreamConnection, symbols: list[str], since_ms: int | None) -> None:
        self.reopened.append((conn.id, symbols, since_ms))

    def kline_symbols(self, start: int = 0) -> set[str]:
        return {f.symbol for f in self.frames[start:] if isinstance(f, Kline)}

    def has_marks(self) -> bool:
        return any(isinstance(f, MarkPrices) and f.items for f in self.frames)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(
        SimConfig(symbols=6, seed=11, update_interval=0.1, late_close_probability=0.0)
    ) as server:
        yield server


@contextlib.asynccontextmanager
async def running(manager: StreamManager) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(manager.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def options(**changes: float) -> StreamOptions:
    base = {"max_streams": 3, "silence_timeout": 5.0, "backoff_base": 0.1, "backoff_cap": 0.5, "tick": 0.05}
    base.update(changes)
    return StreamOptions(**base)  # type: ignore[arg-type]


async def test_symbols_are_spread_over_connections_on_the_market_path(sim: SimServer) -> None:
    rec = Recorder()
    manager = StreamManager(sim.ws_url, rec.sink, rec.on_reopen, options())
    manager.set_symbols(SYMBOLS)

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS) and rec.has_marks())

        conns = sim.stats()["connections"]
        assert len(conns) == 2  # 5 kline streams + the mark-price array, 3 per connection
        assert all(c["path"].startswith("/market/stream?streams=") for c in conns)
        assert "!markPrice@arr@1s" in sim.hub.subs
        assert "币安人生usdt@kline_1m" in sim.hub.subs
        assert all(c.state == "open" for c in manager.connections)


async def test_new_listing_is_subscribed_and_delisting_unsubscribed_without_reconnecting(
    sim: SimServer,
) -> None:
    rec = Recorder()
    manager = StreamManager(sim.ws_url, rec.sink, rec.on_reopen, options(max_streams=4))
    manager.set_symbols(SYMBOLS[:3])

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS[:3]))
        sim.list_symbol("NEWUSDT")
        sim.delist_symbol("ETHUSDT")

        added, removed = manager.set_symbols(["BTCUSDT", "SOLUSDT", "NEWUSDT"])
        assert (added, removed) == (["NEWUSDT"], ["ETHUSDT"])
        mark = len(rec.frames)
        await wait_until(lambda: "NEWUSDT" in rec.kline_symbols(mark))
        await wait_until(lambda: "ethusdt@kline_1m" not in sim.hub.subs)

        assert "newusdt@kline_1m" in sim.hub.subs
        assert sum(c.reconnects for c in manager.connections) == 0
        assert len(sim.stats()["connections"]) == 1  # fitted on the existing connection


async def test_listing_beyond_capacity_opens_another_connection(sim: SimServer) -> None:
    rec = Recorder()
    manager = StreamManager(sim.ws_url, rec.sink, rec.on_reopen, options(max_streams=3))
    manager.set_symbols(SYMBOLS[:2])

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS[:2]))
        manager.set_symbols(SYMBOLS)
        await wait_until(lambda: rec.kline_symbols() >= set(SYMBOLS))

        assert len(manager.connections) == 2
        assert len(sim.stats()["connections"]) == 2


async def test_malformed_frames_are_counted_and_the_stream_goes_on(sim: SimServer) -> None:
    rec = Recorder()
    manager = StreamManager(sim.ws_url, rec.sink, rec.on_reopen, options(max_streams=10))
    manager.set_symbols(SYMBOLS[:2])

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS[:2]))
        sim.send_malformed(6)
        conn = manager.connections[0]
        await wait_until(lambda: conn.malformed >= 6)
        mark = len(rec.frames)
        await wait_until(lambda: rec.kline_symbols(mark) == set(SYMBOLS[:2]))

        assert conn.reconnects == 0
        assert conn.state == "open"


async def test_watchdog_reconnects_a_silent_connection_and_reports_the_gap(sim: SimServer) -> None:
    rec = Recorder()
    manager = StreamManager(sim.ws_url, rec.sink, rec.on_reopen, options(max_streams=10, silence_timeout=0.6))
    manager.set_symbols(SYMBOLS[:2])

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS[:2]))
        conn = manager.connections[0]
        sim.go_silent(1.0)
        await wait_until(lambda: conn.reconnects >= 1)
        mark = len(rec.frames)
        await wait_until(lambda: rec.kline_symbols(mark) == set(SYMBOLS[:2]))

        conn_id, symbols, since = rec.reopened[0]
        assert conn_id == conn.id
        assert sorted(symbols) == sorted(SYMBOLS[:2])
        assert since is not None and since > 0  # the last event time seen before the silence


async def test_one_dropped_connection_does_not_stall_the_others(sim: SimServer) -> None:
    rec = Recorder()
    manager = StreamManager(sim.ws_url, rec.sink, rec.on_reopen, options())
    manager.set_symbols(SYMBOLS)

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS))
        first, second = manager.connections
        sim.refuse_connections(1.0)
        victim = next(c for c in sim.hub.connections.values() if "btcusdt" in c.path)
        victim.abort()
        await wait_until(lambda: first.state != "open")
        # while c0 is refused, c1 keeps delivering
        mark = len(rec.frames)
        await wait_until(lambda: set(second.symbols()) <= rec.kline_symbols(mark))
        assert first.state != "open"

        await wait_until(lambda: first.state == "open" and first.reconnects == 1, timeout=10)
        assert rec.reopened and rec.reopened[0][0] == first.id
        assert second.reconnects == 0


async def test_connection_is_replaced_before_its_lifetime_ends_without_a_gap(sim: SimServer) -> None:
    rec = Recorder()
    manager = StreamManager(sim.ws_url, rec.sink, rec.on_reopen, options(max_streams=10, max_lifetime=0.5))
    manager.set_symbols(SYMBOLS[:2])

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS[:2]))
        conn = manager.connections[0]
        first_server_conn = min(sim.hub.connections)
        await wait_until(lambda: min(sim.hub.connections, default=first_server_conn) != first_server_conn)

        assert conn.reconnects == 0  # a rotation is not a reconnect
        assert rec.reopened == []
        mark = len(rec.frames)
        await wait_until(lambda: rec.kline_symbols(mark) == set(SYMBOLS[:2]))


async def test_readers_hold_back_while_an_alert_is_saved_and_at_most_max_pause() -> None:
    pacer = ReadPacer(max_pause=5.0)
    pacer.press()
    waiting = asyncio.create_task(pacer.step_aside())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # held back while the alert is being saved
    pacer.release()
    await asyncio.wait_for(waiting, 1)

    short = ReadPacer(max_pause=0.05)
    short.press()  # PostgreSQL slow: the pause ends at max_pause even if never released
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(short.step_aside(), 1)
    assert asyncio.get_running_loop().time() - started >= 0.04
    await asyncio.wait_for(short.step_aside(), 0.01)  # past the deadline: a plain yield
    short.release()
    assert short.urgent == 0
