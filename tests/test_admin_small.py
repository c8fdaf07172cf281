"""Issue #20 item 7, the payment/admin part, by use through the real Dispatcher and the Telegram
look-alike: /subscription dates in the user's time zone, a /broadcast of a message that cannot be
copied leaves no draft behind, and admin texts without raw values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from core.settings import Settings
from tests.bot_harness import ADMIN_ID, RunningBot, running_bot

USER = 6062


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    async with running_bot(settings, db, redis) as running:
        await running.add_user(ADMIN_ID)
        yield running


@pytest.mark.parametrize(("language", "words"), [("en", "Ends on"), ("ru", "")])
async def test_subscription_shows_the_end_in_the_users_time_zone(app: RunningBot, language: str, words: str):
    end = (app.clock.now() + timedelta(days=10)).replace(hour=9, minute=0, second=0, microsecond=0)
    await app.add_user(USER, tier="pro", expires=end, language=language)
    await app.pool.execute("UPDATE user_settings SET timezone = 'Asia/Tokyo' WHERE user_id = $1", USER)
    [reply] = await app.send(USER, "/subscription")
    assert f"{end + timedelta(hours=9):%Y-%m-%d} 18:00 Asia/Tokyo" in reply.text
    assert words in reply.text and "UTC" not in reply.text


async def test_a_broadcast_of_a_message_that_cannot_be_copied_leaves_no_draft(app: RunningBot):
    app.tg.fail("copyMessage", 400, "Bad Request: message to copy not found")
    original = {"message_id": 77, "date": 0, "chat": {"id": ADMIN_ID, "type": "private"}, "text": "gone"}
    [reply] = await app.send(ADMIN_ID, "/broadcast", reply_to=original)
    assert "cannot be broadcast" in reply.text and "message to copy not found" in reply.text
    assert await app.pool.fetchval("SELECT count(*) FROM broadcasts WHERE status = 'draft'") == 0


async def test_grant_and_connect_texts_name_plans_not_raw_values(app: RunningBot):
    await app.add_user(USER)
    [granted] = await app.send(ADMIN_ID, f"/grant {USER} elite")
    [connected] = await app.send(ADMIN_ID, "/connect pro", chat_id=-100700, chat_type="supergroup")
    for text in (granted.text, connected.text):
        assert " pro " not in text and " elite" not in text
    assert "Elite" in granted.text and "Pro" in connected.text
