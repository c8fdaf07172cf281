"""Helpers for the sender tests: a running `Sender` against the Telegram look-alike (real aiogram
HTTP session, real PostgreSQL), fan-out of an alert's rows, and the delivery counters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
from aiogram import Bot
from prometheus_client import REGISTRY

from bot.app import build_bot
from bot.delivery.limiter import PAID_BROADCAST_RATE, RateLimiter
from bot.delivery.recipients import insert_deliveries
from bot.delivery.sender import Sender
from bot.i18n import create_i18n
from core.clock import ManualClock
from core.settings import Settings
from tests.bot_harness import compile_catalogs
from tests.delivery_harness import bot_settings
from tests.fakes.telegram_api import FakeTelegram

NOW = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)


class RunningSender(Sender):
    """A Sender with the task that runs it (cancel it to stop the sender as SIGTERM does)."""

    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_sender(
    settings: Settings,
    pool: asyncpg.Pool,
    tg: FakeTelegram,
    clock: ManualClock,
    *,
    bot: Bot | None = None,
    **options: object,
) -> AsyncIterator[RunningSender]:
    """A sender running until the block ends; then stopped as SIGTERM stops it (cancelled)."""
    compile_catalogs()
    config = bot_settings(settings, tg)
    own_bot = bot is None
    paid = bool(options.get("paid_broadcast"))
    bot = bot or build_bot(config)
    sender = RunningSender(
        bot,
        pool,
        create_i18n(),
        RateLimiter(config.telegram_global_rate, paid_rate=PAID_BROADCAST_RATE if paid else 0.0),
        clock=clock,
        webapp_url=config.webapp_url,
        **{"poll_interval": 0.05, **options},  # type: ignore[arg-type]
    )
    sender.task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        sender.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender.task
        if own_bot:
            await bot.session.close()


async def fan_out(pool: asyncpg.Pool, alert_id: int | None, now: datetime = NOW) -> None:
    assert alert_id is not None
    async with pool.acquire() as conn:
        await insert_deliveries(conn, alert_id, now)


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("volspike_deliveries_total", {"outcome": outcome}) or 0.0
