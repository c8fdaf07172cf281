"""A subscription is never lost: SUBSCRIBE issued during the handshake, the rotation hand-over
or a reconnect reaches the wire, and LIST_SUBSCRIPTIONS reconciliation repairs what the
exchange forgot. Real websockets against the simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
import websockets
from prometheus_client import REGISTRY
from websockets.exceptions import ConnectionClosed

from ingest.streams import StreamManager
from simulator.config import SimConfig
from simulator.server import SimServer
from simulator.streams import Connection
from tests.test_streams import Recorder, options, running, wait_until

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
NEW = "NEWUSDT"
NEW_STREAM = "newusdt@kline_1m"


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(
        SimConfig(symbols=6, seed=11, update_interval=0.1, late_close_probability=0.0)
    ) as server:
        try:
            yield server
        finally:
            server.release_handshakes()


def server_conns(sim: SimServer) -> list[Connection]:
    return list(sim.hub.connections.values())


def repairs_metric(conn_id: str) -> float:
    value = REGISTRY.get_sample_value(
        "volspike_ingest_ws_subscription_repairs_total", {"conn": conn_id, "kind": "missing"}
    )
    return value or 0.0


async def test_subscribe_and_unsubscribe_during_the_handshake_reach_the_wire(sim: SimServer) -> None:
    rec = Recorder()
    manager = StreamManager(
        sim.ws_url, rec.sink, rec.on_reopen, options(max_streams=10, reconcile_interval=3600.0)
    )
    manager.set_symbols(SYMBOLS)
    sim.hold_handshakes()

    async with running(manager):
        await wait_until(lambda: sim.held_handshakes == 1, what="the client inside its handshake")
        (conn,) = manager.connections
        assert conn.state == "connecting"
        sim.list_symbol(NEW)
        manager.set_symbols(["BTCUSDT", NEW])  # ETHUSDT delisted, NEWUSDT listed
        sim.release_handshakes()

        await wait_until(lambda: NEW in rec.kline_symbols(), what="the new listing's klines")
        (server,) = server_conns(sim)
        assert "newusdt" not in server.path  # it came by SUBSCRIBE, not in the URL
        assert NEW_STREAM in server.streams
        assert "ethusdt" in server.path  # the URL was built before the delisting
        await wait_until(lambda: "ethusdt@kline_1m" not in server.streams, what="UNSUBSCRIBE on the wire")
        assert conn.reconnects == 0 and conn.repairs == 0


async def test_subscribe_during_the_rotation_hand_over_reaches_the_successor(sim: SimServer) -> None:
    rec = Recorder()
    manager = StreamManager(
        sim.ws_url,
        rec.sink,
        rec.on_reopen,
        options(max_streams=10, max_lifetime=0.6, reconcile_interval=3600.0),
    )
    manager.set_symbols(SYMBOLS)

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS))
        (conn,) = manager.connections
        sim.hold_handshakes()
        await wait_until(lambda: sim.held_handshakes == 1, what="the successor inside its handshake")
        (old,) = server_conns(sim)
        assert conn.state == "open"  # the old socket is still read during the hand-over

        sim.list_symbol(NEW)
        manager.set_symbols([*SYMBOLS, NEW])
        await wait_until(lambda: NEW_STREAM in old.streams, what="the old socket subscribed meanwhile")
        # the next rotation waits in its handshake: the successor has to carry the listing itself
        sim.release_handshakes(keep_holding=True)
        await wait_until(
            lambda: old.id not in sim.hub.connections and len(sim.hub.connections) == 1,
            what="the hand-over to the successor",
        )
        (successor,) = server_conns(sim)
        assert "newusdt" not in successor.path  # its URL was built before the listing

        await wait_until(lambda: NEW_STREAM in successor.streams, what="SUBSCRIBE on the successor")
        mark = len(rec.frames)
        await wait_until(
            lambda: rec.kline_symbols(mark) == {*SYMBOLS, NEW}, what="klines after the hand-over"
        )
        assert conn.reconnects == 0 and conn.repairs == 0
        sim.release_handshakes()


async def test_subscribe_during_a_reconnect_backoff_and_its_handshake_reaches_the_wire(
    sim: SimServer,
) -> None:
    rec = Recorder()
    manager = StreamManager(
        sim.ws_url,
        rec.sink,
        rec.on_reopen,
        options(max_streams=10, reconcile_interval=3600.0, backoff_base=0.2, backoff_cap=0.4),
    )
    manager.set_symbols(SYMBOLS)

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS))
        (conn,) = manager.connections
        sim.refuse_connections(0.6)
        sim.hold_handshakes()
        sim.drop_connections()
        await wait_until(lambda: conn.state != "open", what="the drop noticed")
        sim.list_symbol(NEW)
        manager.set_symbols([*SYMBOLS, NEW])  # while refused and backing off

        await wait_until(lambda: sim.held_handshakes == 1, timeout=10, what="the retry inside its handshake")
        sim.list_symbol("LATEUSDT")
        manager.set_symbols([*SYMBOLS, NEW, "LATEUSDT"])  # while the retry is in its handshake
        sim.release_handshakes()

        await wait_until(lambda: {NEW, "LATEUSDT"} <= rec.kline_symbols(), what="both listings' klines")
        (server,) = server_conns(sim)
        assert NEW_STREAM in server.path  # built during the backoff
        assert "lateusdt" not in server.path and "lateusdt@kline_1m" in server.streams
        assert conn.reconnects == 1


async def test_a_subscription_the_exchange_forgot_is_restored_within_one_reconciliation(
    sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    manager = StreamManager(
        sim.ws_url, rec.sink, rec.on_reopen, options(max_streams=10, reconcile_interval=0.3)
    )
    manager.set_symbols(SYMBOLS)

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS))
        (conn,) = manager.connections
        (server,) = server_conns(sim)
        before = repairs_metric(conn.id)
        caplog.set_level(logging.WARNING, logger="ingest.streams")

        assert sim.forget_subscription("btcusdt@kline_1m") == 1
        assert "btcusdt@kline_1m" not in server.streams
        await wait_until(lambda: conn.repairs == 1, what="the reconciliation finding the loss")
        await wait_until(lambda: "btcusdt@kline_1m" in server.streams, what="SUBSCRIBE again")
        mark = len(rec.frames)
        await wait_until(lambda: "BTCUSDT" in rec.kline_symbols(mark), what="BTCUSDT klines again")

        assert repairs_metric(conn.id) == before + 1
        assert conn.reconnects == 0
        lines = [r for r in caplog.records if r.getMessage().startswith("exchange subscriptions differ")]
        assert len(lines) == 1 and lines[0].__dict__["missing"] == ["btcusdt@kline_1m"]
        await asyncio.sleep(0.8)  # more reconciliations: nothing else to repair
        assert conn.repairs == 1


async def test_a_subscription_the_exchange_added_by_itself_is_removed(sim: SimServer) -> None:
    rec = Recorder()
    manager = StreamManager(
        sim.ws_url, rec.sink, rec.on_reopen, options(max_streams=10, reconcile_interval=0.3)
    )
    manager.set_symbols(SYMBOLS)

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS))
        (conn,) = manager.connections
        (server,) = server_conns(sim)
        sim.hub.subscribe(server, ["solusdt@kline_1m"])
        await wait_until(lambda: conn.repairs == 1, what="the reconciliation finding the stranger")
        await wait_until(lambda: "solusdt@kline_1m" not in server.streams, what="UNSUBSCRIBE of it")
        assert set(server.streams) == {"btcusdt@kline_1m", "ethusdt@kline_1m", "!markPrice@arr@1s"}


async def test_the_forget_control_endpoint_drops_a_subscription(sim: SimServer) -> None:
    async with raw_socket(sim, "/market/stream?streams=btcusdt@kline_1m") as ws:
        await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
        async with aiohttp.ClientSession() as http:
            async with http.post(sim.rest_url + "/sim/forget", json={"stream": "btcusdt@kline_1m"}) as resp:
                assert resp.status == 200 and await resp.json() == {"forgotten": 1}
            async with http.post(sim.rest_url + "/sim/forget", json={"stream": 7}) as resp:
                assert resp.status == 400
        assert await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2}) == {"result": [], "id": 2}


async def test_a_refused_subscribe_is_retried_stream_by_stream_and_the_bad_one_left_out(
    sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    manager = StreamManager(
        sim.ws_url, rec.sink, rec.on_reopen, options(max_streams=10, reconcile_interval=3600.0)
    )
    manager.set_symbols(SYMBOLS)
    caplog.set_level(logging.WARNING, logger="ingest.streams")

    async with running(manager):
        await wait_until(lambda: rec.kline_symbols() == set(SYMBOLS))
        (server,) = server_conns(sim)
        # one SUBSCRIBE for both; Binance refuses it whole: "BAD SYMBOL" is an invalid stream
        manager.set_symbols([*SYMBOLS, "BAD SYMBOL", "SOLUSDT"])
        await wait_until(lambda: "SOLUSDT" in rec.kline_symbols(), what="the good stream of the batch")
        await asyncio.sleep(0.6)  # three more control slots: the bad stream is not asked again

        rejected = [r for r in caplog.records if r.getMessage() == "stream request rejected"]
        assert [r.__dict__["streams"] for r in rejected] == [
            ["bad symbol@kline_1m", "solusdt@kline_1m"],
            ["bad symbol@kline_1m"],
        ]
        assert all("invalid stream" in r.__dict__["error"] for r in rejected)
        assert "bad symbol@kline_1m" not in server.streams
        assert manager.connections[0].reconnects == 0


# --- the simulator speaks Binance's subscription protocol ---------------------------------


@contextlib.asynccontextmanager
async def raw_socket(sim: SimServer, path: str = "/market/ws") -> AsyncIterator[websockets.ClientConnection]:
    async with websockets.connect(sim.ws_url + path, ping_interval=None) as ws:
        yield ws


async def request(ws: websockets.ClientConnection, message: object) -> dict[str, object]:
    """Send one request and return the reply with its id (data frames are skipped)."""
    await ws.send(message if isinstance(message, str) else orjson.dumps(message).decode())
    async with asyncio.timeout(5):
        while True:
            reply = orjson.loads(await ws.recv())
            if isinstance(reply, dict) and ("result" in reply or "error" in reply):
                return reply


async def test_sim_answers_bad_requests_with_binance_error_replies(sim: SimServer) -> None:
    async with raw_socket(sim) as ws:
        cases: list[tuple[object, dict[str, object]]] = [
            (
                {"method": "SUBSCRIBE", "params": ["not a stream"], "id": 1},
                {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 1},
            ),
            (
                {"method": "LIST_SUBSCRIPTIONS", "params": ["x"], "id": 2},
                {"error": {"code": 2, "msg": "Invalid request: too many parameters"}, "id": 2},
            ),
            (
                {"method": "GET_PROPERTY", "params": ["colour"], "id": 3},
                {"error": {"code": 0, "msg": "Unknown property"}, "id": 3},
            ),
            (
                {"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 4},
                {"error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": 4},
            ),
            (
                {"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": -1},
                {
                    "error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
                    "id": None,
                },
            ),
            (
                {"params": [], "id": 5},
                {"error": {"code": 2, "msg": "Invalid request: missing field `method`"}, "id": 5},
            ),
        ]
        for message, expected in cases:
            assert await request(ws, message) == expected, message
        await asyncio.sleep(1.1)
        reply = await request(ws, "[1,")
        error = reply["error"]
        assert isinstance(error, dict) and error["code"] == 3 and str(error["msg"]).startswith("Invalid JSON")
        assert await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 6}) == {"result": [], "id": 6}


async def test_sim_forgets_a_subscription_on_request_and_lists_what_it_holds(sim: SimServer) -> None:
    async with raw_socket(sim, "/market/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m") as ws:
        listed = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
        assert listed == {"result": ["btcusdt@kline_1m", "ethusdt@kline_1m"], "id": 1}
        assert sim.forget_subscription("ethusdt@kline_1m") == 1
        assert await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2}) == {
            "result": ["btcusdt@kline_1m"],
            "id": 2,
        }


async def test_sim_counts_pings_toward_the_ten_messages_per_second(sim: SimServer) -> None:
    async with raw_socket(sim) as ws:
        for _ in range(6):
            await ws.ping()
        for i in range(5):
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
