"""A running bot for tests: the real Dispatcher long-polling the Telegram look-alike, with the
session's real PostgreSQL and Redis. Used by tests/test_bot_*.py and tests/test_translations.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiogram import Bot, Dispatcher
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.app import build_bot, build_dispatcher
from bot.i18n import create_i18n
from bot.polling import poll_until_cancelled
from core.clock import ManualClock
from core.i18n import DOMAIN, LOCALES_DIR, SUPPORTED_LOCALES
from core.redis_names import RedisNames
from core.settings import Settings
from tests.fakes.telegram_api import TOKEN, Call, FakeTelegram

ADMIN_ID = 900_000_001

SYMBOLS = [
    ("BTCUSDT", "BTC", "USDT"),
    ("ETHUSDT", "ETH", "USDT"),
    ("SOLUSDT", "SOL", "USDT"),
    ("XRPUSDT", "XRP", "USDT"),
    ("DOGEUSDT", "DOGE", "USDT"),
    ("ADAUSDT", "ADA", "USDT"),
    ("1000PEPEUSDT", "1000PEPE", "USDT"),
    ("BTCUSDC", "BTC", "USDC"),
    ("BNBUSDT", "BNB", "USDT"),
]


def compile_catalogs() -> None:
    """Compile `locales/*/LC_MESSAGES/messages.po` to `.mo` when missing or older (a fresh clone)."""
    for locale in SUPPORTED_LOCALES:
        po = LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
        mo = po.with_suffix(".mo")
        if not po.exists():
            continue
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source, locale=locale)
        tmp = mo.with_suffix(f".mo.{os.getpid()}.tmp")  # concurrent sessions: each its own file
        with tmp.open("wb") as target:
            write_mo(target, catalog)
        Path(tmp).replace(mo)


async def seed_symbols(pool: asyncpg.Pool) -> None:
    await pool.executemany(
        "INSERT INTO symbols (symbol, base_asset, quote_asset, contract_type, status) "
        "VALUES ($1, $2, $3, 'PERPETUAL', 'TRADING') ON CONFLICT DO NOTHING",
        SYMBOLS,
    )


@dataclass
class RunningBot:
    tg: FakeTelegram
    bot: Bot
    dp: Dispatcher
    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    names: RedisNames
    clock: ManualClock

    def replies(self, chat_id: int) -> list[Call]:
        return [
            c
            for c in self.tg.calls
            if c.chat_id == chat_id and c.method in ("sendMessage", "editMessageText")
        ]

    async def send(
        self, user_id: int, text: str, *, expect: int = 1, keep_throttle: bool = False, **kwargs: object
    ) -> list[Call]:
        """Push a message and wait for `expect` new messages/edits to that chat; returns them."""
        if not keep_throttle:
            await self.redis.delete(self.names.throttle(user_id))
        chat_id = int(kwargs.get("chat_id", user_id))  # type: ignore[call-overload]
        before = len(self.replies(chat_id))
        self.tg.push_message(user_id, text, **kwargs)  # type: ignore[arg-type]
        await self.tg.wait_for(lambda _: len(self.replies(chat_id)) >= before + expect)
        return self.replies(chat_id)[before:]

    async def press(
        self,
        user_id: int,
        data: str,
        *,
        language_code: str | None = "en",
        message_id: int = 1,
        reply_markup: dict[str, Any] | None = None,
    ) -> Call:
        """Press an inline button; waits for the callback answer and returns it."""
        await self.redis.delete(self.names.throttle(user_id))
        update_id = self.tg.push_callback(
            user_id, data, language_code=language_code, message_id=message_id, reply_markup=reply_markup
        )
        query_id = str(update_id - 1)  # the look-alike numbers the query just before the update

        def answered(calls: list[Call]) -> bool:
            return any(
                c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == query_id
                for c in calls
            )

        await self.tg.wait_for(answered)
        return next(
            c
            for c in self.tg.calls
            if c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == query_id
        )

    async def add_user(
        self,
        user_id: int,
        *,
        tier: str = "free",
        language: str = "en",
        expires: datetime | None = None,
        banned: bool = False,
    ) -> None:
        await self.pool.execute(
            "INSERT INTO users (id, first_name, language, tier, tier_expires_at, banned) "
            "VALUES ($1, 'Trader', $2, $3, $4, $5)",
            user_id,
            language,
            tier,
            expires,
            banned,
        )
        await self.pool.execute("INSERT INTO user_settings (user_id) VALUES ($1)", user_id)


@contextlib.asynccontextmanager
async def running_bot(
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    *,
    clock: ManualClock | None = None,
    **overrides: object,
) -> AsyncIterator[RunningBot]:
    compile_catalogs()
    async with FakeTelegram() as tg:
        config = settings.model_copy(
            update={
                "bot_token": SecretStr(TOKEN),
                "telegram_api_url": tg.url,
                "admin_ids": frozenset({ADMIN_ID}),
                **overrides,
            }
        )
        clock = clock or ManualClock(datetime.now(UTC))
        bot = build_bot(config)
        dp = build_dispatcher(config, pool, redis, i18n=create_i18n(), clock=clock)
        polling = asyncio.create_task(
            poll_until_cancelled(dp, bot, allowed_updates=dp.resolve_used_update_types(), polling_timeout=1)
        )
        try:
            yield RunningBot(tg, bot, dp, config, pool, redis, RedisNames(config.redis_prefix), clock)
        finally:
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await bot.session.close()
