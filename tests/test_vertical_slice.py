"""The first milestone end to end: an exchange event becomes an alert in a Telegram chat.

Everything runs for real on 127.0.0.1: the Binance-compatible simulator (REST + websockets),
`run_ingest` (universe, streams, backfill, detector, publisher), PostgreSQL and Redis, and
`run_bot` (aiogram long polling + the delivery worker and sender) talking to the Telegram
look-alike. Only the two third parties are replaced by local servers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from pydantic import SecretStr

from bot.app import run_bot
from ingest.service import run_ingest
from simulator import SimConfig, SimServer
from tests.fakes.telegram_api import TOKEN, FakeTelegram

ELITE = 5550001
FREE = 5550002


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    # Sim time = wall time, so delivery delays (measured from the exchange's event time) mean what
    # they say; the previous hour is generated history the backfill reads over REST.
    server = SimServer(SimConfig(symbols=4, seed=7, natural_spike_rate=0.0))
    await server.start()
    yield server
    await server.stop()


async def test_a_spike_on_the_exchange_reaches_the_elite_chat_once(db, redis, names, settings, sim) -> None:
    async with FakeTelegram() as tg:
        cfg = settings.model_copy(
            update={
                "binance_rest_url": sim.rest_url,
                "binance_ws_url": sim.ws_url,
                "telegram_api_url": tg.url,
                "bot_token": SecretStr(TOKEN),
                "history_hours": 2,
            }
        )
        ingest = asyncio.create_task(run_ingest(cfg, db, redis, history=False, health_interval=0.5))
        bot = asyncio.create_task(run_bot(cfg, db, redis))
        try:
            # Two traders arrive through Telegram; one of them pays for elite.
            tg.push_message(ELITE, "/start", first_name="Elite")
            tg.push_message(FREE, "/start", first_name="Free")
            await tg.wait_for_call("sendMessage", ELITE)
            await tg.wait_for_call("sendMessage", FREE)
            await db.execute("UPDATE users SET tier = 'elite' WHERE id = $1", ELITE)

            # Ingest is armed once it has backfilled the previous hour of every symbol.
            async def armed() -> bool:
                raw = await redis.get(names.ingest_health)
                return raw is not None and b'"armed": true' in raw.replace(b'"armed":true', b'"armed": true')

            await eventually(armed, 60, "ingest to arm")

            symbol = "BTCUSDT"
            spike = sim.trigger_spike(symbol, 4.0, min_quote_volume=cfg.spike_min_quote_volume)
            assert spike.target_hour_quote >= 4.0 * spike.previous_hour_quote

            calls = await tg.wait_for(
                lambda calls: any(
                    c.method == "sendMessage" and c.chat_id == ELITE and "VOLUME SPIKE" in c.text
                    for c in calls
                ),
                timeout=30,
            )
            alerts = [c for c in calls if c.chat_id == ELITE and "VOLUME SPIKE" in c.text]
            assert len(alerts) == 1
            assert alerts[0].text.startswith("<b>BTC hourly volume $")
            buttons = [b for row in alerts[0].params["reply_markup"]["inline_keyboard"] for b in row]
            assert any(b.get("callback_data") == f"mute:{symbol}" for b in buttons)

            rows = await db.fetch("SELECT alert_type, volume_ratio FROM alerts WHERE symbol = $1", symbol)
            assert [r["alert_type"] for r in rows] == ["SPIKE"]
            assert rows[0]["volume_ratio"] >= cfg.spike_multiple

            # The row is resolved right after Telegram answers.
            async def resolved() -> bool:
                status = await db.fetchval("SELECT status FROM deliveries WHERE chat_id = $1", ELITE)
                return bool(status == "sent")

            await eventually(resolved, 10, "the elite delivery row to be marked sent")
            delivery = await db.fetch("SELECT chat_id, status, due_at FROM deliveries ORDER BY chat_id")
            by_chat = {r["chat_id"]: r for r in delivery}
            assert by_chat[ELITE]["status"] == "sent"
            # The free trader's copy waits 15 minutes in PostgreSQL, not in memory.
            assert by_chat[FREE]["status"] == "pending"

            # The stream entry was acknowledged after the delivery rows were committed.
            pending = await redis.xpending(names.alerts_stream, names.delivery_group)
            assert pending["pending"] == 0
            # Nothing twice: a second look a moment later finds still one message.
            await asyncio.sleep(1.0)
            assert len([c for c in tg.calls_to("sendMessage", ELITE) if "VOLUME SPIKE" in c.text]) == 1
        finally:
            for task in (bot, ingest):
                task.cancel()
            for task in (bot, ingest):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
