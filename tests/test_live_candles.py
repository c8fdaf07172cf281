"""Ingest → Redis pub/sub → /ws: a chart's forming candle arrives live, end to end (simulator
over real HTTP and websockets, real PostgreSQL and Redis, the real webapp)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from simulator.config import SimConfig
from simulator.server import SimServer
from tests.test_ingest_service import armed, followed, ingest, sim_start_ms
from webapp.app import create_app
from webapp.ws import LIVE_HUB


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    config = SimConfig(symbols=3, seed=5, speed=10.0, start_time=sim_start_ms(), update_interval=0.1)
    async with SimServer(config) as server:
        yield server


async def test_a_running_ingest_streams_candle_updates_to_a_chart_socket(
    settings, db, redis, names, sim
) -> None:
    config = settings.model_copy(
        update={"binance_rest_url": sim.rest_url, "binance_ws_url": sim.ws_url, "history_hours": 2}
    )
    async with ingest(config, db, redis):
        await armed(redis, names)
        symbol = (await followed(db))[0]
        app = create_app(config, pool=db, redis=redis)
        async with TestClient(TestServer(app)) as client, client.ws_connect("/ws") as ws:
            await asyncio.wait_for(app[LIVE_HUB].subscribed.wait(), 10)
            await ws.send_str(
                orjson.dumps({"op": "subscribe", "channel": "candles", "symbol": symbol}).decode()
            )
            async with asyncio.timeout(20):
                while True:
                    message = await ws.receive()
                    assert message.type == WSMsgType.TEXT, message
                    data = orjson.loads(message.data)
                    if data["type"] == "candle":
                        break
            assert data["symbol"] == symbol and isinstance(data["closed"], bool)
            candle = data["candle"]
            assert set(candle) == {"t", "o", "h", "l", "c", "v"} and candle["t"] % 60 == 0
            assert (
                candle["l"] <= min(candle["o"], candle["c"]) <= max(candle["o"], candle["c"]) <= candle["h"]
            )
