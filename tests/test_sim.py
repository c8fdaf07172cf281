"""The exchange simulator, over real HTTP and WebSocket on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

import simulator as sim_cli
from simulator import ScheduledSpike, SimConfig, SimServer
from simulator.market import Market
from simulator.universe import PERPETUAL_DELIVERY_MS, build_universe

# 2026-01-01 00:20:10 UTC: ten seconds into a minute, so a test has ~50 s before a boundary
START = 1_767_225_600_000 + 20 * 60_000 + 10_000
MINUTE = 60_000
HOUR = 3_600_000


def config(**overrides: Any) -> SimConfig:
    base: dict[str, Any] = {
        "symbols": 5,
        "seed": 11,
        "start_time": START,
        "natural_spike_rate": 0.0,
        "late_close_probability": 0.0,
        "update_interval": 0.05,
    }
    base.update(overrides)
    return SimConfig(**base)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(config()) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http: aiohttp.ClientSession, sim: SimServer, path: str, **params: Any) -> tuple[int, Any, Any]:
    async with http.get(sim.rest_url + path, params={k: str(v) for k, v in params.items()}) as r:
        return r.status, await r.json(), r.headers


async def post(http: aiohttp.ClientSession, sim: SimServer, path: str, body: Any) -> tuple[int, Any]:
    async with http.post(sim.rest_url + path, json=body) as r:
        return r.status, await r.json()


async def recv_json(ws: ClientConnection, timeout: float = 3.0) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws: ClientConnection, pred: Callable[[Any], bool], timeout: float = 5.0) -> list[Any]:
    """Frames up to and including the first that satisfies ``pred``."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no matching frame within {timeout}s; last: {seen[-3:]}")
        msg = await recv_json(ws, left)
        seen.append(msg)
        if pred(msg):
            return seen


def is_kline(msg: Any, *, closed: bool | None = None, interval: str = "1m") -> bool:
    data = msg.get("data", msg) if isinstance(msg, dict) else None
    k = data.get("k") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("e") != "kline"
        or not isinstance(k, dict)
        or k.get("i") != interval
    ):
        return False
    return closed is None or k.get("x") is closed


def row_of(k: dict[str, Any]) -> list[Any]:
    """A stream kline as the REST row it must equal."""
    return [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], k["B"]]


# ---------------------------------------------------------------------------- model


def test_market_is_deterministic_per_seed_symbol_minute() -> None:
    a = Market(5, build_universe(5, 20, START))
    b = Market(5, build_universe(5, 300, START))  # a bigger universe does not change a symbol
    c = Market(6, build_universe(6, 20, START))
    now = START + 5 * HOUR
    ka = a.klines("SOLUSDT", "1m", now, limit=120)
    assert ka == b.klines("SOLUSDT", "1m", now, limit=120)
    assert ka != c.klines("SOLUSDT", "1m", now, limit=120)
    # prices are continuous: each minute opens at the previous close
    assert all(x.c == y.o for x, y in itertools.pairwise(ka))
    # an hour is the aggregate of its minutes
    hour = a.klines("SOLUSDT", "1h", now, start_ms=START // HOUR * HOUR, limit=1)[0]
    minutes = a.klines("SOLUSDT", "1m", now, start_ms=hour.open_ms, limit=60)
    assert hour.q == pytest.approx(sum(m.q for m in minutes))
    assert hour.h == max(m.h for m in minutes) and hour.l == min(m.l for m in minutes)
    assert hour.n == sum(m.n for m in minutes)


def test_volumes_look_like_the_real_market() -> None:
    market = Market(1, build_universe(1, 300, START))
    now = START + 3 * HOUR
    hour_open = START // HOUR * HOUR + HOUR
    hourly = {
        s.symbol: market.klines(s.symbol, "1h", now, start_ms=hour_open, limit=1)[0].q
        for s in market.symbols()[:300]
    }
    assert 0.7e9 <= hourly["BTCUSDT"] <= 7e9
    assert 0.3e9 <= hourly["ETHUSDT"] <= 3e9
    tail = sorted(hourly.values())[:200]
    assert min(tail) < 3e6 and max(tail) < 1e9


# ---------------------------------------------------------------------------- REST


async def test_exchange_info_lists_what_ingest_must_filter(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    status, info, headers = await get(http, sim, "/fapi/v1/exchangeInfo")
    assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert info["timezone"] == "UTC" and abs(info["serverTime"] - START) < 60_000
    weight = [r for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT"]
    assert weight == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}
    ]
    by_name = {s["symbol"]: s for s in info["symbols"]}
    assert by_name["BTCUSDT"]["deliveryDate"] == PERPETUAL_DELIVERY_MS
    assert by_name["BTCUSDT"]["contractType"] == "PERPETUAL" and by_name["BTCUSDT"]["status"] == "TRADING"
    kinds = {(s["contractType"], s["quoteAsset"], s["status"]) for s in info["symbols"]}
    assert ("CURRENT_QUARTER", "USDT", "TRADING") in kinds
    assert ("PERPETUAL", "USDC", "TRADING") in kinds
    assert ("TRADIFI_PERPETUAL", "USDT", "TRADING") in kinds
    assert any(s["status"] == "SETTLING" for s in info["symbols"])
    assert by_name["币安人生USDT"]["contractType"] == "PERPETUAL"
    tradeable = [
        s
        for s in info["symbols"]
        if s["contractType"] == "PERPETUAL" and s["quoteAsset"] == "USDT" and s["status"] == "TRADING"
    ]
    assert len(tradeable) == 5 + 1
    filters = {f["filterType"]: f for f in by_name["ETHUSDT"]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01"


async def test_klines_limit_start_end_and_errors(sim: SimServer, http: aiohttp.ClientSession) -> None:
    status, rows, headers = await get(http, sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m")
    assert status == 200 and len(rows) == 500 and headers["X-MBX-USED-WEIGHT-1M"] == "5"
    row = rows[-1]
    assert len(row) == 12 and all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
    assert row[0] == START // MINUTE * MINUTE and row[6] == row[0] + MINUTE - 1  # the open, partial candle
    assert [r[0] for r in rows] == list(range(row[0] - 499 * MINUTE, row[0] + 1, MINUTE))

    start = START - 10 * MINUTE - 1234  # not aligned: the first candle opens at or after startTime
    _, rows, _ = await get(
        http, sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", startTime=start, limit=3
    )
    assert [r[0] for r in rows] == [START // MINUTE * MINUTE - 9 * MINUTE + k * MINUTE for k in range(3)]
    end = START // MINUTE * MINUTE - 30 * MINUTE
    _, rows, _ = await get(
        http, sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", endTime=end + 5, limit=2
    )
    assert [r[0] for r in rows] == [end - MINUTE, end]
    _, rows, _ = await get(
        http,
        sim,
        "/fapi/v1/klines",
        symbol="BTCUSDT",
        interval="1h",
        startTime=START // HOUR * HOUR - 3 * HOUR,
        endTime=START,
    )
    assert [r[0] for r in rows] == [START // HOUR * HOUR - 3 * HOUR + k * HOUR for k in range(4)]

    cases: list[tuple[dict[str, Any], int]] = [
        ({"symbol": "NOPEUSDT", "interval": "1m"}, -1121),
        ({"interval": "1m"}, -1102),
        ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": 1501}, -1130),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "ten"}, -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": 5, "endTime": 4}, -1023),
    ]
    for params, code in cases:
        status, body, headers = await get(http, sim, "/fapi/v1/klines", **params)
        assert status == 400 and body["code"] == code and body["msg"], params
        assert "X-MBX-USED-WEIGHT-1M" in headers


async def test_ticker_and_premium_index(sim: SimServer, http: aiohttp.ClientSession) -> None:
    _, one, _ = await get(http, sim, "/fapi/v1/ticker/24hr", symbol="ETHUSDT")
    assert one["symbol"] == "ETHUSDT" and float(one["quoteVolume"]) > 1e9 and isinstance(one["count"], int)
    _, every, headers = await get(http, sim, "/fapi/v1/ticker/24hr")
    assert headers["X-MBX-USED-WEIGHT-1M"] == "41" and len(every) >= 6
    _, mark, _ = await get(http, sim, "/fapi/v1/premiumIndex", symbol="BTCUSDT")
    assert set(mark) == {
        "symbol",
        "markPrice",
        "indexPrice",
        "estimatedSettlePrice",
        "lastFundingRate",
        "interestRate",
        "nextFundingTime",
        "time",
    }
    assert mark["nextFundingTime"] % (8 * HOUR) == 0 and isinstance(mark["markPrice"], str)
    _, marks, _ = await get(http, sim, "/fapi/v1/premiumIndex")
    quarterly = next(m for m in marks if m["symbol"].startswith("BTCUSDT_"))
    assert quarterly["lastFundingRate"] == "" and quarterly["nextFundingTime"] == 0


async def test_forced_429_and_418_with_retry_after(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.fail_rest(2, retry_after=3)
    for _ in range(2):
        status, body, headers = await get(http, sim, "/fapi/v1/time")
        assert status == 429 and headers["Retry-After"] == "3" and body["code"] == -1003
    status, body, _ = await get(http, sim, "/fapi/v1/time")
    assert status == 200 and "serverTime" in body
    status, _ = await post(http, sim, "/sim/rest_errors", {"count": 1, "retry_after": 7, "status": 418})
    assert status == 200
    status, body, headers = await get(http, sim, "/fapi/v1/ping")
    assert status == 418 and headers["Retry-After"] == "7"
    async with http.get(sim.rest_url + "/sim/requests", params={"path": "/fapi/v1/time"}) as r:
        log = await r.json()
    assert [e["status"] for e in log] == [429, 429, 200]
    assert all(isinstance(e["time"], float) and e["params"] == {} for e in log)


async def test_weight_limit_gives_429_then_418(http: aiohttp.ClientSession) -> None:
    async with SimServer(config(weight_limit=12, ban_after_violations=2)) as sim:
        for expected in (5, 10):
            _, _, headers = await get(
                http, sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=500
            )
            assert headers["X-MBX-USED-WEIGHT-1M"] == str(expected)
        statuses = []
        for _ in range(4):
            status, body, headers = await get(http, sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m")
            statuses.append(status)
            assert 1 <= int(headers["Retry-After"]) <= 120 and body["code"] == -1003
        assert statuses == [429, 429, 418, 418]


# ---------------------------------------------------------------------------- WebSocket


async def test_streamed_closed_klines_equal_rest_history(sim: SimServer, http: aiohttp.ClientSession) -> None:
    url = sim.ws_url + "/market/stream?streams=btcusdt@kline_1m/btcusdt@kline_1h"
    async with websockets.connect(url) as ws:
        await recv_until(ws, lambda m: is_kline(m, closed=False))
        sim.advance(HOUR)  # closes the minute and the hour in progress
        closed: dict[str, dict[str, Any]] = {}
        while len(closed) < 2:
            msg = await recv_json(ws)
            assert set(msg) == {"stream", "data"}
            if msg["data"]["k"]["x"]:
                closed[msg["data"]["k"]["i"]] = msg["data"]["k"]
    for interval, k in closed.items():
        assert k["t"] == (START // MINUTE * MINUTE if interval == "1m" else START // HOUR * HOUR)
        _, rows, _ = await get(
            http, sim, "/fapi/v1/klines", symbol="BTCUSDT", interval=interval, startTime=k["t"], limit=1
        )
        assert rows == [row_of(k)]


async def test_late_close_frame_after_next_minute(http: aiohttp.ClientSession) -> None:
    async with (
        SimServer(config(late_close_probability=1.0, late_close_max_delay=0.3)) as sim,
        websockets.connect(sim.ws_url + "/market/ws/ethusdt@kline_1m") as ws,
    ):
        first = await recv_until(ws, lambda m: is_kline(m))
        assert first[-1]["e"] == "kline"  # a raw stream: no combined wrapper
        sim.advance(60)
        frames = await recv_until(ws, lambda m: is_kline(m, closed=True))
        new_minute = START // MINUTE * MINUTE + MINUTE
        assert any(f["k"]["t"] == new_minute and not f["k"]["x"] for f in frames)
        assert frames[-1]["k"]["t"] == new_minute - MINUTE


async def test_subscribe_list_unsubscribe_and_errors(sim: SimServer) -> None:
    async with websockets.connect(sim.ws_url + "/market/ws") as ws:
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["solusdt@kline_1m"], "id": 1}).decode())
        assert await recv_json(ws) == {"result": None, "id": 1}
        frame = (await recv_until(ws, lambda m: is_kline(m)))[-1]
        assert frame["s"] == "SOLUSDT" and set(frame["k"]) == set("tTsifLochlvnxqVQB")
        await ws.send(
            orjson.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 2}).decode()
        )
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}).decode())
        replies = await recv_until(ws, lambda m: m.get("id") == 3)
        assert {"result": None, "id": 2} in replies and replies[-1] == {
            "result": ["solusdt@kline_1m"],
            "id": 3,
        }
        assert set((await recv_until(ws, lambda m: is_kline(m)))[-1]) == {"stream", "data"}
        await ws.send(
            orjson.dumps({"method": "UNSUBSCRIBE", "params": ["solusdt@kline_1m"], "id": 4}).decode()
        )
        await recv_until(ws, lambda m: m.get("id") == 4)
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 5}).decode())
        assert (await recv_until(ws, lambda m: m.get("id") == 5))[-1] == {"result": [], "id": 5}

        await ws.send("{not json")
        reply = await recv_json(ws)
        assert reply["error"]["code"] == 3 and reply["id"] is None
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["x"], "id": "one"}).decode())
        assert (await recv_json(ws))["error"]["code"] == 2
        await ws.send(orjson.dumps({"method": "SUBSCRIPE", "params": ["x"], "id": 6}).decode())
        reply = await recv_json(ws)
        assert reply["error"]["code"] == 2 and reply["id"] == 6 and "SUBSCRIPE" in reply["error"]["msg"]
        await asyncio.sleep(1.0)  # stay under 10 messages per second
        too_many = [f"aaa{i}usdt@kline_1m" for i in range(1025)]
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": too_many, "id": 7}).decode())
        reply = await recv_json(ws)
        assert reply["error"]["code"] == 2 and reply["id"] == 7 and "1024" in reply["error"]["msg"]


async def test_more_than_10_messages_per_second_closes(sim: SimServer) -> None:
    async with websockets.connect(sim.ws_url + "/market/ws") as ws:
        for i in range(11):
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), 3.0)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008


async def test_spike_crosses_the_multiple_within_seconds(sim: SimServer, http: aiohttp.ClientSession) -> None:
    _, rows, _ = await get(http, sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="1h", limit=2)
    previous = float(rows[0][7])
    async with websockets.connect(sim.ws_url + "/market/ws/ethusdt@kline_1h") as ws:
        frames = await recv_until(ws, lambda m: is_kline(m, interval="1h"))
        assert float(frames[-1]["k"]["q"]) < 3 * previous
        started = time.monotonic()
        info = sim.trigger_spike("ETHUSDT", 3.0)
        assert info.previous_hour_quote == pytest.approx(previous, rel=1e-9)
        await recv_until(ws, lambda m: is_kline(m, interval="1h") and float(m["k"]["q"]) >= 3 * previous)
        assert time.monotonic() - started < 5.0
    _, rows, _ = await get(http, sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="1h", limit=1)
    assert float(rows[0][7]) >= 3 * previous  # REST agrees with the stream
    sim.advance(60)
    _, rows, _ = await get(
        http, sim, "/fapi/v1/klines", symbol="ETHUSDT", interval="1m", startTime=info.minute_open_ms, limit=1
    )
    assert float(rows[0][7]) >= info.extra_quote  # the spike stays in the minute's history


async def test_control_endpoints(sim: SimServer, http: aiohttp.ClientSession) -> None:
    status, spike = await post(http, sim, "/sim/spike", {"symbol": "SOLUSDT", "multiple": 4})
    assert status == 200 and spike["targetHourQuoteVolume"] >= 4 * spike["previousHourQuoteVolume"]
    status, body = await post(http, sim, "/sim/spike", {"symbol": "NOPE", "multiple": 4})
    assert status == 404 and body["error"] == "unknown_symbol"
    status, body = await post(http, sim, "/sim/advance", {"seconds": 120})
    assert status == 200 and body["serverTime"] >= START + 120_000
    status, listed = await post(http, sim, "/sim/list", {"symbol": "NEWUSDT", "price": 1.5})
    assert status == 200 and listed["status"] == "TRADING" and listed["onboardDate"] <= body["serverTime"]
    status, delisted = await post(http, sim, "/sim/delist", {"symbol": "XRPUSDT"})
    assert status == 200 and delisted["status"] == "SETTLING"
    _, info, _ = await get(http, sim, "/fapi/v1/exchangeInfo")
    statuses = {s["symbol"]: s["status"] for s in info["symbols"]}
    assert statuses["NEWUSDT"] == "TRADING" and statuses["XRPUSDT"] == "SETTLING"
    _, rows, _ = await get(http, sim, "/fapi/v1/klines", symbol="NEWUSDT", interval="1m")
    assert len(rows) == 1
    status, body = await post(http, sim, "/sim/advance", {"seconds": "lots"})
    assert status == 400 and body["error"] == "bad_request"
    async with http.get(sim.rest_url + "/sim/stats") as r:
        stats = await r.json()
    assert stats["symbols"] == 5 + 5 + 1 and "connections" in stats


async def test_scheduled_spike_fires_on_advance(http: aiohttp.ClientSession) -> None:
    spike = ScheduledSpike(symbol="BTCUSDT", multiple=3.0, minute_offset=2)
    async with SimServer(config(spikes=[spike])) as sim:
        assert sim.stats()["pendingSpikes"] == 1
        sim.advance(150)
        assert sim.stats()["pendingSpikes"] == 0
        _, rows, _ = await get(http, sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1h", limit=2)
        assert float(rows[1][7]) >= 3 * float(rows[0][7])


async def test_mark_price_array_stream(sim: SimServer) -> None:
    async with websockets.connect(sim.ws_url + "/market/stream?streams=!markPrice@arr@1s") as ws:
        msg = await recv_json(ws, 3.0)
    assert msg["stream"] == "!markPrice@arr@1s"
    events = msg["data"]
    assert {e["s"] for e in events} >= {"BTCUSDT", "ETHUSDT"}
    assert "XAUUSDT" not in {e["s"] for e in events}  # TradFi stays out of the all-market stream
    assert set(events[0]) == {"e", "E", "s", "p", "ap", "P", "i", "r", "T"}
    assert events[0]["e"] == "markPriceUpdate" and isinstance(events[0]["p"], str)


async def test_malformed_frames_keep_the_connection(sim: SimServer) -> None:
    async with websockets.connect(sim.ws_url + "/market/stream?streams=btcusdt@kline_1m") as ws:
        await recv_until(ws, lambda m: is_kline(m))
        assert sim.send_malformed(6) == 1
        bad = 0
        good_after = False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not (bad >= 6 and good_after):
            raw = await asyncio.wait_for(ws.recv(), 3)
            try:
                msg = orjson.loads(raw)
                ok = isinstance(msg, dict) and isinstance(msg.get("data"), dict) and is_kline(msg)
                ok = ok and isinstance(msg["data"]["k"].get("q"), str)
            except orjson.JSONDecodeError:
                ok = False
            if ok:
                good_after = bad >= 6
            else:
                bad += 1
        assert bad >= 6 and good_after


async def test_drop_refuse_then_reconnect(sim: SimServer) -> None:
    url = sim.ws_url + "/market/ws/btcusdt@kline_1m"
    async with websockets.connect(url) as ws:
        await recv_json(ws)
        assert sim.drop_connections(refuse_seconds=0.6) == 1
        with pytest.raises(ConnectionClosedError):
            while True:
                await asyncio.wait_for(ws.recv(), 3)
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code == 503
    await asyncio.sleep(0.7)
    async with websockets.connect(url) as ws:
        assert is_kline(await recv_json(ws))
    assert sim.stats()["connectionCount"] == 0


async def test_silence_keeps_connections_open(sim: SimServer) -> None:
    async with websockets.connect(sim.ws_url + "/market/ws/btcusdt@kline_1m") as ws:
        await recv_json(ws)
        sim.go_silent(0.8)
        await asyncio.sleep(0.1)
        with contextlib.suppress(asyncio.TimeoutError):  # drain what was already queued
            while True:
                await asyncio.wait_for(ws.recv(), 0.05)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.4)
        assert is_kline(await recv_json(ws, 2.0))
        assert sim.stats()["connectionCount"] == 1


# ---------------------------------------------------------------------------- CLI hooks


async def test_cli_parser_and_run_stops_on_cancel() -> None:
    parser = argparse.ArgumentParser()
    sim_cli.configure_parser(parser)
    args = parser.parse_args(["--port", "0", "--symbols", "3", "--spike", "BTCUSDT:3.5:10", "--speed", "2"])
    assert args.spike == [ScheduledSpike(symbol="BTCUSDT", multiple=3.5, minute_offset=10.0)]
    assert parser.parse_args([]).port == 9900
    with pytest.raises(SystemExit):
        parser.parse_args(["--spike", "BTCUSDT:x"])
    task = asyncio.create_task(sim_cli.run(args))
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
