"""Long polling that stops cleanly when its task is cancelled.

Cancelling `Dispatcher.start_polling` directly would leave aiogram's inner polling task running;
here cancellation asks the Dispatcher to stop (`stop_polling`) and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiogram import Bot, Dispatcher

POLLING_TIMEOUT = 10  # seconds Telegram holds a getUpdates open
MAX_CONCURRENT_UPDATES = 64


async def poll_until_cancelled(
    dp: Dispatcher, bot: Bot, *, allowed_updates: list[str], polling_timeout: int = POLLING_TIMEOUT
) -> None:
    polling = asyncio.create_task(
        dp.start_polling(
            bot,
            handle_signals=False,
            close_bot_session=False,
            allowed_updates=allowed_updates,
            polling_timeout=polling_timeout,
            tasks_concurrency_limit=MAX_CONCURRENT_UPDATES,
        ),
        name="aiogram-polling",
    )
    try:
        await asyncio.shield(polling)
    except asyncio.CancelledError:
        await _stop(dp, polling)
        raise


async def _stop(dp: Dispatcher, polling: asyncio.Task[None]) -> None:
    if not polling.done():
        try:
            await dp.stop_polling()
        except RuntimeError:  # not started yet: nothing of aiogram's runs, so cancelling is safe
            polling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await polling
