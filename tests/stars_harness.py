"""A running bot with the Stars look-alike plugged in, and helpers to feed payment updates straight
through the real Dispatcher (`feed`, which returns once every handler is done)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiogram.types import Update
from redis.asyncio import Redis

from core.clock import ManualClock
from core.plans import Kind, Payload
from core.settings import Settings
from core.tiers import Tier
from tests.bot_harness import RunningBot, running_bot
from tests.fakes.telegram_payments import FakeStars

_FED_IDS = itertools.count(10_000_000)  # apart from the look-alike's own update ids
PRO_PRICE = 250
ELITE_PRICE = 750


@dataclass
class StarsBot:
    app: RunningBot
    stars: FakeStars

    async def feed(self, update: dict[str, Any]) -> None:
        """Dispatch one update through the real Dispatcher and wait for its handlers."""
        raw = {"update_id": next(_FED_IDS), **update}
        await self.app.dp.feed_update(self.app.bot, Update.model_validate(raw, context={"bot": self.app.bot}))

    def payload(
        self, user_id: int, tier: Tier = Tier.PRO, kind: Kind = Kind.PASS, price: int | None = None
    ) -> str:
        stars = price if price is not None else (PRO_PRICE if tier is Tier.PRO else ELITE_PRICE)
        return Payload(kind, tier, stars, user_id).encode()

    async def user(self, user_id: int) -> asyncpg.Record:
        row = await self.app.pool.fetchrow("SELECT tier, tier_expires_at FROM users WHERE id = $1", user_id)
        assert row is not None
        return row

    async def payments(self, user_id: int) -> list[asyncpg.Record]:
        return list(
            await self.app.pool.fetch("SELECT * FROM payments WHERE user_id = $1 ORDER BY id", user_id)
        )

    async def history(self, user_id: int) -> list[str]:
        rows = await self.app.pool.fetch(
            "SELECT cause FROM tier_history WHERE user_id = $1 ORDER BY id", user_id
        )
        return [r["cause"] for r in rows]


@contextlib.asynccontextmanager
async def stars_bot(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, *, clock: ManualClock | None = None
) -> AsyncIterator[StarsBot]:
    async with running_bot(
        settings, pool, redis, clock=clock, stars_price_pro=PRO_PRICE, stars_price_elite=ELITE_PRICE
    ) as app:
        yield StarsBot(app, FakeStars(app.tg))
