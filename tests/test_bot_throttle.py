"""Flood control as the README promises it: one "slow down" per burst, however long the burst lasts.

The bucket runs on the bot's clock, so the test moves time instead of waiting for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from core.settings import Settings
from tests.bot_harness import RunningBot, running_bot

USER = 500_000_070
OTHER = 500_000_071

SLOW_DOWN = {
    "en": "Slow down, please: too many requests. Try again in a few seconds.",
    "ru": "Помедленнее, пожалуйста: слишком много запросов. Попробуйте через несколько секунд.",
}


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    async with running_bot(settings, db, redis) as running:
        yield running


async def flood(app: RunningBot, count: int, every: float, language: str) -> None:
    """`count` messages `every` seconds apart on the bot's clock, each handled before the next."""
    key = app.names.throttle(USER)
    for _ in range(count):
        app.clock.advance(every)
        app.tg.push_message(USER, "/help", language_code=language)
        stamp = app.clock.now().timestamp()

        for _attempt in range(1000):  # the bucket records the message's time when it counts it
            at = await app.redis.hget(key, "at")
            if at is not None and abs(float(at) - stamp) < 1e-3:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the message never reached the throttle")
    # Everything sent has been answered once a later update of someone else is.
    await app.send(OTHER, "/help")


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_fifty_messages_in_two_and_a_half_seconds_get_one_slow_down(app: RunningBot, language: str):
    await flood(app, 50, 0.05, language)
    texts = app.tg.sent_texts(USER)
    assert texts.count(SLOW_DOWN[language]) == 1
    # Single messages still pass as tokens come back (5 at once, then about 2 a second).
    helps = [t for t in texts if "/watch" in t]
    assert 8 <= len(helps) <= 12

    # A pause long enough to fill the bucket ends the burst: the next flood is told once again.
    app.clock.advance(3)
    await flood(app, 20, 0.05, language)
    assert app.tg.sent_texts(USER).count(SLOW_DOWN[language]) == 2
