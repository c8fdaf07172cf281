"""Stopping the long polling (`bot.polling.poll_until_cancelled`) with updates still being handled:
aiogram runs each update in a task of its own that outlives the polling. The stop waits for them
(bounded) and cancels the rest, so no handler calls through the bot after the caller closes its
session (such a call opened a new aiohttp session that nothing closed). Real aiogram against the
Telegram look-alike."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiogram import Bot, Dispatcher, Router
from aiogram.types import Message
from pydantic import SecretStr

from bot.app import build_bot
from bot.polling import poll_until_cancelled
from core.settings import Settings
from tests.fakes.telegram_api import TOKEN, FakeTelegram

USER = 4242


@contextlib.asynccontextmanager
async def polling_bot(
    settings: Settings, handler: Callable[[Message], Awaitable[None]], *, drain_timeout: float
) -> AsyncIterator[tuple[FakeTelegram, asyncio.Task[None]]]:
    router = Router()
    router.message()(handler)
    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    async with FakeTelegram() as tg:
        bot: Bot = build_bot(
            settings.model_copy(update={"bot_token": SecretStr(TOKEN), "telegram_api_url": tg.url})
        )
        polling = asyncio.create_task(
            poll_until_cancelled(
                dispatcher, bot, allowed_updates=["message"], polling_timeout=1, drain_timeout=drain_timeout
            )
        )
        try:
            yield tg, polling
        finally:
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await bot.session.close()


async def test_stopping_waits_for_an_update_still_being_handled(settings: Settings) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(message: Message) -> None:
        started.set()
        await release.wait()
        await message.answer("done")

    async with polling_bot(settings, slow, drain_timeout=10) as (tg, polling):
        tg.push_message(USER, "hello")
        await asyncio.wait_for(started.wait(), 10)
        asyncio.get_running_loop().call_later(0.2, release.set)  # released once the stop has begun
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        # The stop returned only after the handler's reply, while the session was still open.
        assert tg.sent_texts(USER) == ["done"]


async def test_an_update_that_does_not_finish_in_time_is_cancelled_before_the_stop_returns(
    settings: Settings,
) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(message: Message) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        await message.answer("never")

    async with polling_bot(settings, stuck, drain_timeout=0.3) as (tg, polling):
        tg.push_message(USER, "hello")
        await asyncio.wait_for(started.wait(), 10)
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(polling, 5)
        assert cancelled.is_set()
        assert tg.sent_texts(USER) == []
