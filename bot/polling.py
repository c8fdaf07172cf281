"""Long polling that stops cleanly when its task is cancelled.

Cancelling `Dispatcher.start_polling` directly would leave aiogram's inner polling task running;
here cancellation asks the Dispatcher to stop (`stop_polling`) and waits for it.

aiogram handles each update in a task of its own, which outlives the polling: stopping also waits
(`DRAIN_TIMEOUT`, as in webhook mode) for the updates still being handled, then cancels the rest, so
that no handler calls through the bot once the caller has closed its session.

Telegram serves one `getUpdates` at a time per bot (a second one gets 409 "Conflict: terminated
by other getUpdates request"), so with several `volspike bot` processes only the holder of the
polling lock polls (`poll_as_leader`, `db.leadership`); every process runs the delivery
worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiogram import Bot, Dispatcher

from core.tasks import finish_or_cancel
from db.leadership import Leadership

log = logging.getLogger(__name__)

POLLING_TIMEOUT = 10  # seconds Telegram holds a getUpdates open
MAX_CONCURRENT_UPDATES = 64
POLLING_LOCK = 0x56_53_50_4F_4C_4C  # "VSPOLL": held by the one bot process that long-polls
DRAIN_TIMEOUT = 10.0  # seconds the updates still being handled get when the polling stops


async def poll_as_leader(database_url: str, dp: Dispatcher, bot: Bot, *, allowed_updates: list[str]) -> None:
    """Long polling in whichever bot process holds the polling lock; the others stand by."""
    # No grace: two pollers for a moment after a PostgreSQL restart only cost one 409, retried.
    leadership = Leadership(database_url, POLLING_LOCK, "bot polling", grace=0.0)
    await leadership.run(lambda: poll_until_cancelled(dp, bot, allowed_updates=allowed_updates))


async def poll_until_cancelled(
    dp: Dispatcher,
    bot: Bot,
    *,
    allowed_updates: list[str],
    polling_timeout: int = POLLING_TIMEOUT,
    drain_timeout: float = DRAIN_TIMEOUT,
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
        try:
            await _stop(dp, polling)
        finally:
            await _drain(dp, drain_timeout)
        raise


async def _stop(dp: Dispatcher, polling: asyncio.Task[None]) -> None:
    if not polling.done():
        try:
            await dp.stop_polling()
        except RuntimeError:  # not started yet: nothing of aiogram's runs, so cancelling is safe
            polling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await polling


async def _drain(dp: Dispatcher, timeout: float) -> None:
    # aiogram keeps the tasks of the updates being handled in this set (its webhook handler's twin
    # is `_background_feed_update_tasks`, drained by `bot.webhook.WebhookHandler.drain`).
    cancelled = await finish_or_cancel(set(dp._handle_update_tasks), timeout)
    if cancelled:
        log.warning("updates still being handled at shutdown were cancelled", extra={"count": cancelled})
