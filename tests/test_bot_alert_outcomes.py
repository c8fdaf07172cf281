"""`/alerts` shows what the price did after each SPIKE, through the Telegram look-alike, in the
user's language: the longest horizon computed, unknown when candles were missing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from core.clock import ManualClock
from core.settings import Settings
from ingest.outcomes import OutcomesJob
from tests.bot_harness import RunningBot, running_bot, seed_symbols
from tests.outcome_harness import DETECTED, HOUR, Scenario, write

USER = 500_000_021


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    await seed_symbols(db)
    async with running_bot(settings, db, redis, clock=ManualClock(HOUR + timedelta(hours=5))) as running:
        yield running


async def outcomes_at(app: RunningBot, now: datetime) -> None:
    await OutcomesJob(app.pool, lookback_days=30, clock=ManualClock(now)).run_once()


@pytest.mark.parametrize(
    ("language", "after_1h", "after_4h", "unknown"),
    [
        ("en", "-3.00% after 1 h", "+5.00% after 4 h", "after 1 h: no price data"),
        ("ru", "-3.00% через 1 ч", "+5.00% через 4 ч", "через 1 ч: нет данных о цене"),
    ],
)
async def test_alerts_show_the_move_after_each_spike(
    app: RunningBot, language: str, after_1h: str, after_4h: str, unknown: str
) -> None:
    await app.add_user(USER, tier="elite", language=language)
    first = await write(app.pool, Scenario(symbol="XUSDT"))
    gap = Scenario(symbol="YUSDT", skip={HOUR + timedelta(hours=1, minutes=20)})
    await write(app.pool, gap, detected=DETECTED + timedelta(seconds=10))
    await outcomes_at(app, HOUR + timedelta(hours=1, minutes=30))  # +1 h passed, +4 h not yet
    [reply] = await app.send(USER, "/alerts")
    x_line = next(line for line in reply.text.splitlines() if "<b>X</b>" in line)
    y_line = next(line for line in reply.text.splitlines() if "<b>Y</b>" in line)
    assert x_line.endswith(after_1h) and y_line.endswith(unknown)

    await outcomes_at(app, HOUR + timedelta(hours=5))
    [reply] = await app.send(USER, "/alerts")
    assert next(line for line in reply.text.splitlines() if "<b>X</b>" in line).endswith(after_4h)
    assert (
        await app.pool.fetchval("SELECT horizon_minutes FROM alert_outcomes WHERE alert_id = $1", first)
        == 240
    )


async def test_a_spike_younger_than_fifteen_minutes_shows_no_outcome(app: RunningBot) -> None:
    await app.add_user(USER, tier="elite")
    app.clock.set(DETECTED + timedelta(minutes=10))
    await write(app.pool, Scenario(symbol="XUSDT"))
    await outcomes_at(app, DETECTED + timedelta(minutes=10))
    [reply] = await app.send(USER, "/alerts")
    line = next(line for line in reply.text.splitlines() if "<b>X</b>" in line)
    assert line.endswith("$100") and "after" not in line
    assert app.clock.now() < datetime(2026, 3, 2, 11, tzinfo=UTC)
