"""The TradingView UDF datafeed through real HTTP and PostgreSQL: shapes, no_data/nextTime,
countback, errors, and the Redis cache."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.clock import ManualClock
from tests.miniapp_harness import NOW, add_minutes, add_symbols
from webapp.app import create_app
from webapp.keys import ANSWERS

START = NOW - timedelta(hours=3)
T0 = int(START.timestamp())


@pytest.fixture
async def client(settings, db, redis):
    await add_symbols(db, ["BTCUSDT", "ETHUSDT"])
    await db.execute("UPDATE symbols SET price_precision = 1 WHERE symbol = 'BTCUSDT'")
    await add_minutes(db, "BTCUSDT", START, 180)
    app = create_app(settings, pool=db, redis=redis, clock=ManualClock(NOW))
    async with TestClient(TestServer(app)) as client:
        yield client


async def _get(client: TestClient, url: str) -> object:
    response = await client.get(url)
    assert response.status == 200
    return orjson.loads(await response.read())


async def test_config_names_resolutions_and_search(client: TestClient) -> None:
    body = await _get(client, "/udf/config")
    assert body["supported_resolutions"] == ["1", "5", "15", "60", "240", "1D"]
    assert body["supports_search"] is True and body["supports_group_request"] is False
    assert body["supports_time"] is True


async def test_symbol_resolve_accepts_the_exchange_prefix(client: TestClient) -> None:
    body = await _get(client, "/udf/symbols?symbol=BINANCE:BTCUSDT")
    assert body["name"] == "BTCUSDT" and body["ticker"] == "BTCUSDT"
    assert body["session"] == "24x7" and body["timezone"] == "Etc/UTC"
    assert body["pricescale"] == 10 and body["minmov"] == 1 and body["has_intraday"] is True
    assert await _get(client, "/udf/symbols?symbol=NOPEUSDT") == {
        "s": "error",
        "errmsg": "unknown symbol NOPEUSDT",
    }


async def test_search_finds_by_prefix_and_filters_exchange(client: TestClient) -> None:
    body = await _get(client, "/udf/search?query=eth&type=&exchange=&limit=10")
    assert [item["symbol"] for item in body] == ["ETHUSDT"]
    assert body[0]["full_name"] == "BINANCE:ETHUSDT" and body[0]["type"] == "crypto"
    assert await _get(client, "/udf/search?query=btc&exchange=NYSE") == []
    assert len(await _get(client, "/udf/search?query=&limit=1")) == 1


async def test_history_returns_columns_of_bars_in_range(client: TestClient) -> None:
    body = await _get(client, f"/udf/history?symbol=BTCUSDT&resolution=60&from={T0}&to={T0 + 3 * 3600}")
    assert body["s"] == "ok"
    assert body["t"] == [T0, T0 + 3600, T0 + 7200]
    assert body["o"][0] == 100.0 and body["c"][0] == 159.5 and body["h"][0] == 160.0 and body["l"][0] == 99.0
    assert body["v"][0] == sum(1000.0 + i for i in range(60))
    assert set(body) == {"s", "t", "o", "h", "l", "c", "v"}


async def test_countback_wins_over_from(client: TestClient) -> None:
    url = f"/udf/history?symbol=BTCUSDT&resolution=1&from={T0 + 170 * 60}&to={T0 + 180 * 60}&countback=30"
    body = await _get(client, url)
    assert body["s"] == "ok" and len(body["t"]) == 30
    assert body["t"][0] == T0 + 150 * 60 and body["t"][-1] == T0 + 179 * 60


async def test_empty_range_with_older_bars_is_no_data_with_next_time(client: TestClient) -> None:
    later = T0 + 5 * 3600
    body = await _get(client, f"/udf/history?symbol=BTCUSDT&resolution=60&from={later}&to={later + 3600}")
    assert body == {"s": "no_data", "nextTime": T0 + 7200}
    before = T0 - 10 * 3600
    body = await _get(client, f"/udf/history?symbol=BTCUSDT&resolution=60&from={before}&to={before + 3600}")
    assert body == {"s": "no_data"}


@pytest.mark.parametrize(
    "query",
    [
        f"symbol=NOPEUSDT&resolution=60&from={T0}&to={T0 + 3600}",
        f"symbol=BTCUSDT&resolution=7&from={T0}&to={T0 + 3600}",
        f"symbol=BTCUSDT&resolution=60&from={T0 + 3600}&to={T0}",
    ],
)
async def test_bad_symbol_resolution_or_range_is_udf_error(client: TestClient, query: str) -> None:
    body = await _get(client, f"/udf/history?{query}")
    assert body["s"] == "error" and body["errmsg"]


@pytest.mark.parametrize(
    "query",
    [
        "symbol=BTCUSDT&resolution=60&from=abc&to=1",
        "resolution=60",
        f"symbol=BTCUSDT&resolution=60&from={T0}&to=99999999999999999",  # the attack run's huge `to`
        "symbol=BTCUSDT&resolution=60&countback=5&to=253402300800",  # 10000-01-01: past datetime's range
    ],
)
async def test_a_query_that_does_not_parse_is_a_400_udf_error(client: TestClient, query: str) -> None:
    response = await client.get(f"/udf/history?{query}")
    assert response.status == 400
    body = orjson.loads(await response.read())
    assert body["s"] == "error" and body["errmsg"]


async def test_history_answers_are_cached_in_redis_for_a_few_seconds(
    client: TestClient, db, redis, names
) -> None:
    url = f"/udf/history?symbol=BTCUSDT&resolution=60&from={T0}&to={T0 + 3600}"
    first = await _get(client, url)
    await db.execute("UPDATE candles_1m SET open = 1 WHERE symbol = 'BTCUSDT'")
    assert await _get(client, url) == first
    ttl = await redis.ttl(names.answer_cache(url))
    assert 0 < ttl <= 5
    await redis.delete(names.answer_cache(url))
    client.server.app[ANSWERS].clear_local()
    assert (await _get(client, url))["o"] == [1.0]


async def test_time_is_unix_seconds_text(client: TestClient) -> None:
    response = await client.get("/udf/time")
    assert await response.text() == str(int(NOW.timestamp()))
