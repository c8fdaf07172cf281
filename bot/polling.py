"""Long polling that stops cleanly when its task is cancelled.

Cancelling `Dispatcher.start_polling` directly would leave aiogram's inner polling task running;
here cancellation asks the Dispatcher to stop (`stop_polling`) and waits for it.

Telegram serves one `getUpdates` at a time per bot (a second one gets 409 "Conflict: terminated
by other getUpdates request"), so with several `volspike bot` processes only the holder of the
polling lock polls (`poll_as_leader`, `db.leadership`); every process runs the delivery
worker.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiogram import Bot, Dispatcher

from db.leadership import Leadership

POLLING_TIMEOUT = 10  # seconds Telegram holds a getUpdates open
MAX_CONCURRENT_UPDATES = 64
POLLING_LOCK = 0x56_53_50_4F_4C_4C  # "VSPOLL": held by the one bot process that long-polls


async def poll_as_leader(database_url: str, dp: Dispatcher, bot: Bot, *, allowed_updates: list[str]) -> None:
    """Long polling in whichever bot process holds the polling lock; the others stand by."""
    # No grace: two pollers for a moment after a PostgreSQL restart only cost one 409, retried.
    leadership = Leadership(database_url, POLLING_LOCK, "bot polling", grace=0.0)
    await leadership.run(lambda: poll_until_cancelled(dp, bot, allowed_updates=allowed_updates))


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
