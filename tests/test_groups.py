"""Groups and channels (issue #20 item 5): alerts in the language the connecting admin chose
(`/connect … lang`), no /status hint where it means nothing, errors answered in the group, and
the admin told when the delivery deactivates a chat after Telegram refused it (403)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.chat_notices import tell_deactivated
from bot.i18n import create_i18n
from core.clock import ManualClock
from core.redis_names import RedisNames
from core.settings import Settings
from tests.bot_harness import ADMIN_ID, RunningBot, running_bot
from tests.delivery_harness import add_alert, poll_until, publish, running_delivery
from tests.fakes.telegram_api import FakeTelegram

GROUP = -100606
START = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    async with running_bot(settings, db, redis) as running:
        await running.add_user(ADMIN_ID)
        yield running


async def test_connect_with_a_language_stores_it_and_says_so(app: RunningBot):
    [reply] = await app.send(ADMIN_ID, "/connect pro ru", chat_id=GROUP, chat_type="supergroup")
    assert reply.text == "This chat now receives Pro spike alerts in Русский."
    row = await app.pool.fetchrow("SELECT tier, language FROM chats WHERE id = $1", GROUP)
    assert (row["tier"], row["language"]) == ("pro", "ru")


async def test_connect_without_a_language_uses_the_admins_own(app: RunningBot):
    await app.pool.execute("UPDATE users SET language = 'es' WHERE id = $1", ADMIN_ID)
    [reply] = await app.send(ADMIN_ID, f"/connect {GROUP} elite")
    assert "Elite" in reply.text and "Español" in reply.text
    assert await app.pool.fetchval("SELECT language FROM chats WHERE id = $1", GROUP) == "es"


@pytest.mark.parametrize(
    ("language", "usage"), [("en", "Usage: /connect [free|pro|elite]"), ("ru", "/connect")]
)
async def test_a_bad_connect_in_a_group_is_answered_in_the_group(app: RunningBot, language: str, usage: str):
    await app.pool.execute("UPDATE users SET language = $2 WHERE id = $1", ADMIN_ID, language)
    [reply] = await app.send(ADMIN_ID, "/connect gold", chat_id=GROUP, chat_type="supergroup")
    assert usage in reply.text.replace("&lt;", "<").replace("&gt;", ">")
    assert await app.pool.fetchval("SELECT count(*) FROM chats") == 0


async def test_group_alerts_come_in_the_chosen_language_without_a_status_hint(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames
):
    clock = ManualClock(START)
    await db.execute(
        "INSERT INTO chats (id, kind, title, tier, connected_by, language) "
        "VALUES ($1, 'supergroup', 'Desk', 'free', 1, 'ru')",
        GROUP,
    )
    alert = await add_alert(db, START)
    async with FakeTelegram() as tg, running_delivery(settings, db, redis, tg, clock):
        await publish(redis, names, alert)
        await poll_until(lambda: _rows(db))
        clock.advance(timedelta(minutes=15))
        [call] = await tg.wait_for_call("sendMessage", GROUP)
    assert "объём" in call.text.lower() or "обьем" in call.text.lower()
    assert "15" in call.text and "/status" not in call.text


async def _rows(db: asyncpg.Pool) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM deliveries"))


async def test_the_admin_is_told_in_their_language_when_a_refused_chat_is_deactivated(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames
):
    clock = ManualClock(START)
    await db.execute("INSERT INTO users (id, first_name, language) VALUES ($1, 'Admin', 'uk')", ADMIN_ID)
    await db.execute(
        "INSERT INTO chats (id, kind, title, tier, connected_by) "
        "VALUES ($1, 'supergroup', 'Desk', 'elite', $2)",
        GROUP,
        ADMIN_ID,
    )
    alert = await add_alert(db, START)
    async with FakeTelegram() as tg:
        tg.blocked_chats.add(GROUP)
        async with running_delivery(settings, db, redis, tg, clock) as delivery:
            await publish(redis, names, alert)
            await poll_until(lambda: _inactive(db))
            told = await tell_deactivated(db, delivery.bot, create_i18n())
            assert told == 1
            assert await tell_deactivated(db, delivery.bot, create_i18n()) == 0  # once
        [notice] = tg.sent_texts(ADMIN_ID)
    assert "Desk" in notice and f"/connect {GROUP}" in notice and "Telegram" in notice
    assert "сповіщення" in notice


async def _inactive(db: asyncpg.Pool) -> bool:
    return await db.fetchval("SELECT NOT active FROM chats WHERE id = $1", GROUP) is True
