"""A spike on the built-in simulator, followed with USE_SIMULATOR=true, reaches Telegram saying
it is simulated: the real simulator, `run_ingest`, `run_bot`, PostgreSQL, Redis and the Telegram
look-alike, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
import pytest
from pydantic import SecretStr

from bot.app import run_bot
from core.alerts import SIMULATED_MARKER
from ingest.service import run_ingest
from simulator import SimConfig, SimServer
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.test_vertical_slice import eventually

ELITE = 5560001


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(symbols=3, seed=11, natural_spike_rate=0.0))
    await server.start()
    yield server
    await server.stop()


async def test_a_simulated_spike_reaches_the_chat_marked_simulated(db, redis, names, settings, sim) -> None:
    async with FakeTelegram() as tg:
        cfg = settings.model_copy(
            update={
                "binance_rest_url": sim.rest_url,
                "binance_ws_url": sim.ws_url,
                "use_simulator": True,
                "telegram_api_url": tg.url,
                "bot_token": SecretStr(TOKEN),
                "history_hours": 2,
            }
        )
        ingest = asyncio.create_task(run_ingest(cfg, db, redis, history=False, health_interval=0.5))
        bot = asyncio.create_task(run_bot(cfg, db, redis))
        try:
            tg.push_message(ELITE, "/start", first_name="Elite")
            await tg.wait_for_call("sendMessage", ELITE)
            await db.execute("UPDATE users SET tier = 'elite' WHERE id = $1", ELITE)

            async def armed() -> bool:
                raw = await redis.get(names.ingest_health)
                return raw is not None and orjson.loads(raw).get("armed") is True

            await eventually(armed, 60, "ingest to arm")
            sim.trigger_spike("BTCUSDT", 4.0, min_quote_volume=cfg.spike_min_quote_volume)
            calls = await tg.wait_for(
                lambda calls: any(c.chat_id == ELITE and "VOLUME SPIKE" in c.text for c in calls), timeout=30
            )
            [alert] = [c for c in calls if c.chat_id == ELITE and "VOLUME SPIKE" in c.text]
            assert alert.text.startswith(f"<b>{SIMULATED_MARKER} BTC hourly volume $")
            assert await db.fetchval("SELECT bool_and(simulated) FROM alerts") is True
            [(_id, fields)] = await redis.xrange(names.alerts_stream)
            payload = orjson.loads(next(iter(fields.values())))
            assert payload["simulated"] is True and payload["message"].startswith(SIMULATED_MARKER)
        finally:
            for task in (bot, ingest):
                task.cancel()
            for task in (bot, ingest):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
