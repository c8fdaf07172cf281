"""The simulator's contract: it says no, as Binance does, to what it does not serve, and its
``/fapi/v1/ticker/24hr`` figures are the aggregate of its own 1m klines.

Over real HTTP and WebSocket on 127.0.0.1. The sim clock is all but frozen (speed 1e-9) and moved
with ``advance``, so the ticker and the klines it is compared with describe the same instant.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import websockets

from simulator import SimConfig, SimServer

# 2026-01-01 00:20:10 UTC
START = 1_767_225_600_000 + 20 * 60_000 + 10_000
MINUTE = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    cfg = SimConfig(
        symbols=4,
        seed=23,
        start_time=START,
        speed=1e-9,
        natural_spike_rate=0.0,
        late_close_probability=0.0,
        update_interval=0.05,
        special_symbols=False,
    )
    async with SimServer(cfg) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession, sim: SimServer, path: str, method: str = "GET", **params: Any
) -> tuple[int, str, Any]:
    url = sim.rest_url + path
    async with http.request(method, url, params={k: str(v) for k, v in params.items()}) as r:
        return r.status, r.content_type, await r.read()


async def get_json(http: aiohttp.ClientSession, sim: SimServer, path: str, **params: Any) -> Any:
    status, _, body = await call(http, sim, path, **params)
    assert status == 200, (path, params, body)
    return orjson.loads(body)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def decimals(text: str) -> int:
    return len(text.partition(".")[2])


def agrees_with_sum(total: str, parts: list[str]) -> bool:
    """``total`` is the sum of ``parts`` up to the rounding of each part to its printed decimals."""
    slack = len(parts) * 0.5 * 10.0 ** -decimals(parts[0]) + 0.5 * 10.0 ** -decimals(total)
    return abs(float(total) - sum(float(p) for p in parts)) <= slack * 1.000001


async def assert_ticker_matches_klines(http: aiohttp.ClientSession, sim: SimServer, symbol: str) -> Any:
    ticker = await get_json(http, sim, "/fapi/v1/ticker/24hr", symbol=symbol)
    rows = await get_json(http, sim, "/fapi/v1/klines", symbol=symbol, interval="1m", limit=1440)
    assert len(rows) == 1440
    now = sim.now_ms()
    assert rows[-1][0] == now // MINUTE * MINUTE  # the last row is the minute in progress
    assert ticker["openTime"] == rows[0][0] and ticker["closeTime"] == now
    assert ticker["closeTime"] - ticker["openTime"] < DAY
    assert ticker["openPrice"] == rows[0][1]
    assert float(ticker["highPrice"]) == max(float(r[2]) for r in rows)
    assert float(ticker["lowPrice"]) == min(float(r[3]) for r in rows)
    assert ticker["lastPrice"] == rows[-1][4]
    assert agrees_with_sum(ticker["volume"], [r[5] for r in rows])
    assert agrees_with_sum(ticker["quoteVolume"], [r[7] for r in rows])
    assert ticker["count"] == sum(r[8] for r in rows)
    assert ticker["lastId"] - ticker["firstId"] + 1 >= ticker["count"]
    change = float(ticker["lastPrice"]) - float(ticker["openPrice"])
    assert close(float(ticker["priceChange"]), change) or abs(float(ticker["priceChange"]) - change) < 1e-6
    return ticker


# ---------------------------------------------------------------- REST: what it does not serve


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/fapi/v1/aggTrades"),
        ("GET", "/fapi/v2/ticker/price"),
        ("GET", "/api/v3/klines"),
        ("GET", "/nothing/here"),
        ("POST", "/fapi/v1/klines"),
        ("DELETE", "/fapi/v1/time"),
    ],
)
async def test_unknown_rest_path_or_method_gets_binance_minus_5000_as_json(
    sim: SimServer, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    status, content_type, body = await call(http, sim, path, method=method)
    assert status == 404 and content_type == "application/json"
    assert orjson.loads(body) == {"code": -5000, "msg": f"Path {path}, Method {method} is invalid"}


async def test_unknown_fapi_path_is_charged_weight_like_any_request(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(sim.rest_url + "/fapi/v1/depth", params={"symbol": "BTCUSDT"}) as r:
        assert r.status == 404 and int(r.headers["X-MBX-USED-WEIGHT-1M"]) >= 1


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/fapi/v1/klines", {"symbol": "NOPEUSDT", "interval": "1h", "limit": 2}),
        ("/fapi/v1/ticker/24hr", {"symbol": "NOPEUSDT"}),
        ("/fapi/v1/premiumIndex", {"symbol": "NOPEUSDT"}),
        ("/fapi/v1/openInterest", {"symbol": "NOPEUSDT"}),
    ],
)
async def test_unknown_symbol_gets_invalid_symbol(
    sim: SimServer, http: aiohttp.ClientSession, path: str, params: dict[str, Any]
) -> None:
    status, content_type, body = await call(http, sim, path, **params)
    assert status == 400 and content_type == "application/json"
    assert orjson.loads(body) == {"code": -1121, "msg": "Invalid symbol."}


async def test_control_and_websocket_routes_still_answer(sim: SimServer, http: aiohttp.ClientSession) -> None:
    status, _, _ = await call(http, sim, "/sim/requests")
    assert status == 200
    async with websockets.connect(f"{sim.ws_url}/market/stream?streams=btcusdt@kline_1m") as ws:
        frame = orjson.loads(await ws.recv())
        assert frame["stream"] == "btcusdt@kline_1m" and frame["data"]["e"] == "kline"


async def test_invalid_stream_name_on_subscribe_gets_binance_error(sim: SimServer) -> None:
    async with websockets.connect(f"{sim.ws_url}/market/ws") as ws:
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@klines"], "id": 9}).decode())
        reply = orjson.loads(await ws.recv())
        assert reply == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 9}


@pytest.mark.parametrize(
    "stream",
    ["btcusdt@aggTrade", "btcusdt@depth@100ms", "btcusdt@bookTicker", "!ticker@arr", "btcusdt@ticker"],
)
async def test_subscribe_to_a_stream_type_the_sim_does_not_serve_gets_binance_error(
    sim: SimServer, stream: str
) -> None:
    async with websockets.connect(f"{sim.ws_url}/market/ws") as ws:
        request = {"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m", stream], "id": 11}
        await ws.send(orjson.dumps(request).decode())
        reply = orjson.loads(await ws.recv())
        assert reply == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 11}
        await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 12}).decode())
        assert orjson.loads(await ws.recv()) == {"result": [], "id": 12}  # refused whole


async def test_subscribe_to_served_stream_types_succeeds(sim: SimServer) -> None:
    streams = ["btcusdt@kline_1m", "btcusdt@kline_1h", "btcusdt@markPrice@1s", "!markPrice@arr@1s"]
    async with websockets.connect(f"{sim.ws_url}/market/ws") as ws:
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": streams, "id": 13}).decode())
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 13}


# ---------------------------------------------------------------- ticker/24hr agrees with klines


async def test_ticker_24h_is_the_sum_of_the_last_1440_one_minute_klines(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    for info in sim.market.symbols():
        await assert_ticker_matches_klines(http, sim, info.symbol)


async def test_ticker_24h_follows_the_clock_across_hours(sim: SimServer, http: aiohttp.ClientSession) -> None:
    before = await assert_ticker_matches_klines(http, sim, "BTCUSDT")
    sim.advance(97 * 60 + 13.5)  # over an hour boundary, into the middle of a minute
    after = await assert_ticker_matches_klines(http, sim, "BTCUSDT")
    assert after["openTime"] == before["openTime"] + 97 * MINUTE
    assert after["quoteVolume"] != before["quoteVolume"]


async def test_ticker_24h_includes_a_spike_as_the_klines_do(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    before = await assert_ticker_matches_klines(http, sim, "ETHUSDT")
    spike = sim.trigger_spike("ETHUSDT", 4.0)
    sim.advance(5)  # the spike's volume has arrived
    after = await assert_ticker_matches_klines(http, sim, "ETHUSDT")
    grown = float(after["quoteVolume"]) - float(before["quoteVolume"])
    assert grown >= spike.extra_quote * 0.99


async def test_every_symbol_ticker_agrees_with_the_single_symbol_one(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    every = await get_json(http, sim, "/fapi/v1/ticker/24hr")
    assert {t["symbol"] for t in every} == {i.symbol for i in sim.market.symbols()}
    for ticker in every:
        one = await get_json(http, sim, "/fapi/v1/ticker/24hr", symbol=ticker["symbol"])
        assert one == ticker


async def test_a_symbol_listed_an_hour_ago_has_only_that_hour_in_its_ticker(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    sim.list_symbol("NEWUSDT", ref_price=2.5, hourly_quote=6e6, onboard_ms=sim.now_ms() - HOUR)
    ticker = await get_json(http, sim, "/fapi/v1/ticker/24hr", symbol="NEWUSDT")
    rows = await get_json(http, sim, "/fapi/v1/klines", symbol="NEWUSDT", interval="1m", limit=1440)
    assert 60 <= len(rows) <= 61 and ticker["openTime"] == rows[0][0]
    assert agrees_with_sum(ticker["quoteVolume"], [r[7] for r in rows])


async def test_a_warm_start_answers_ticker_24h_from_the_day_it_computed_before_listening(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """`volspike sim --warm`: the day is computed before the port opens, and the tickers are the
    ones a cold simulator of the same market computes on the first request."""
    cold = await get_json(http, sim, "/fapi/v1/ticker/24hr")
    config = dataclasses.replace(sim.config, warm_day=True)
    async with SimServer(config) as warm:
        cached_hours = {s: len(warm.market._states[s].closed_agg) for s in warm.market._states}
        assert all(n >= 23 for n in cached_hours.values()), cached_hours  # the closed hours of the day
        assert await get_json(http, warm, "/fapi/v1/ticker/24hr") == cold


# ---------------------------------------------------------------- REST: open interest


async def test_open_interest_now_and_its_history_agree_at_each_5_minute_boundary(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    sim.advance((5 * MINUTE - START % (5 * MINUTE)) / 1000)  # onto a 5-minute boundary
    now = sim.now_ms()
    assert now % (5 * MINUTE) == 0
    current = await get_json(http, sim, "/fapi/v1/openInterest", symbol="BTCUSDT")
    assert set(current) == {"openInterest", "symbol", "time"}
    assert current["symbol"] == "BTCUSDT" and current["time"] == now
    rows = await get_json(http, sim, "/futures/data/openInterestHist", symbol="BTCUSDT", period="5m")
    assert len(rows) == 30  # the default limit: the latest 30 periods, oldest first
    assert [r["timestamp"] for r in rows] == [now - (29 - i) * 5 * MINUTE for i in range(30)]
    assert set(rows[-1]) == {"symbol", "sumOpenInterest", "sumOpenInterestValue", "timestamp"}
    assert float(rows[-1]["sumOpenInterest"]) == float(current["openInterest"])
    price = float((await get_json(http, sim, "/fapi/v1/premiumIndex", symbol="BTCUSDT"))["markPrice"])
    assert math.isclose(
        float(rows[-1]["sumOpenInterestValue"]), float(current["openInterest"]) * price, rel_tol=1e-3
    )


async def test_open_interest_history_from_the_hours_start_and_its_plausible_change(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    hour = START - START % HOUR
    first = await get_json(
        http, sim, "/futures/data/openInterestHist", symbol="ETHUSDT", period="5m", startTime=hour, limit=1
    )
    assert len(first) == 1 and first[0]["timestamp"] == hour
    # startTime inside a period: the first boundary after it
    later = await get_json(
        http,
        sim,
        "/futures/data/openInterestHist",
        symbol="ETHUSDT",
        period="15m",
        startTime=hour + 1,
        limit=2,
    )
    assert [r["timestamp"] for r in later] == [hour + 15 * MINUTE]  # the next one is after now
    now = float((await get_json(http, sim, "/fapi/v1/openInterest", symbol="ETHUSDT"))["openInterest"])
    change = now / float(first[0]["sumOpenInterest"]) - 1
    assert now > 0 and abs(change) < 0.25  # a perpetual's open interest does not jump 25 % in 20 min


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"symbol": "BTCUSDT"}, -1102),  # no period
        ({"symbol": "BTCUSDT", "period": "1m"}, -1120),
        ({"symbol": "BTCUSDT", "period": "5m", "limit": 501}, -1130),
        ({"symbol": "NOPEUSDT", "period": "5m"}, -1121),
        ({"period": "5m"}, -1102),  # no symbol
    ],
)
async def test_open_interest_history_refuses_bad_parameters_as_binance_does(
    sim: SimServer, http: aiohttp.ClientSession, params: dict[str, Any], code: int
) -> None:
    status, content_type, body = await call(http, sim, "/futures/data/openInterestHist", **params)
    assert status == 400 and content_type == "application/json"
    assert orjson.loads(body)["code"] == code


async def test_open_interest_is_charged_weight_1_and_its_history_0(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(sim.rest_url + "/fapi/v1/time") as r:
        used = int(r.headers["X-MBX-USED-WEIGHT-1M"])
    async with http.get(sim.rest_url + "/fapi/v1/openInterest", params={"symbol": "BTCUSDT"}) as r:
        assert r.status == 200 and int(r.headers["X-MBX-USED-WEIGHT-1M"]) == used + 1
    params = {"symbol": "BTCUSDT", "period": "5m"}
    async with http.get(sim.rest_url + "/futures/data/openInterestHist", params=params) as r:
        assert r.status == 200 and int(r.headers["X-MBX-USED-WEIGHT-1M"]) == used + 1
    assert [e["weight"] for e in sim.request_log("/futures/data/openInterestHist")] == [0]


async def test_a_path_can_be_told_to_stall_or_fail_through_the_control_api(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        sim.rest_url + "/sim/path_fault", json={"path": "/fapi/v1/openInterest", "status": 503, "count": 1}
    ) as r:
        assert r.status == 200
    status, _, _ = await call(http, sim, "/fapi/v1/openInterest", symbol="BTCUSDT")
    assert status == 503
    status, _, _ = await call(http, sim, "/fapi/v1/openInterest", symbol="BTCUSDT")
    assert status == 200  # the count is used up
    sim.fault_path("/futures/data/openInterestHist", stall=30.0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await call(http, sim, "/futures/data/openInterestHist", symbol="BTCUSDT", period="5m")
    status, _, _ = await call(http, sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1)
    assert status == 200  # other paths answer meanwhile
    sim.fault_path("/futures/data/openInterestHist", count=0)
    rows = await get_json(http, sim, "/futures/data/openInterestHist", symbol="BTCUSDT", period="5m", limit=1)
    assert len(rows) == 1
