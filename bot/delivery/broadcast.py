"""The broadcast runner: sends confirmed broadcasts through the shared limiter at low priority.

It picks up every `running` broadcast (also after a restart: rows still `sending` from a runner
that died become `lost` and are never re-sent; a living sibling runner's rows are left to it:
each runner holds an owner lock while it runs and writes its key into the rows it claims), sends
to the pending recipients a few at a time, edits the progress into the admin's message every
`progress_every` seconds, and stops as soon as the broadcast is cancelled. Alerts always go
first: the limiter serves low-priority callers only while no alert waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.delivery import metrics
from bot.delivery.limiter import RateLimiter
from core.tasks import raise_if_cancelling
from db import broadcasts
from db.broadcasts import Progress

log = logging.getLogger(__name__)

CONFIRM_PREFIX = "bc:go:"
DISCARD_PREFIX = "bc:no:"
STOP_PREFIX = "bc:stop:"
MAX_RETRY_AFTER = 5  # 429 answers tolerated for one recipient before giving up on them
MAX_NETWORK_RETRIES = 3


def progress_text(i18n: I18n, locale: str, broadcast_id: int, progress: Progress, state: str) -> str:
    def t(msgid: str) -> str:
        return i18n.gettext(msgid, locale=locale)

    headline = {
        "running": t("Broadcast #{id} is running."),
        "done": t("Broadcast #{id} is finished."),
        "cancelled": t("Broadcast #{id} was cancelled."),
    }.get(state, t("Broadcast #{id} is running.")).format(id=broadcast_id)
    counts = t("Sent: {sent}, blocked: {blocked}, failed: {failed} of {total}.").format(
        sent=progress.sent, blocked=progress.blocked, failed=progress.failed, total=progress.total
    )
    return f"{headline}\n{counts}"


def stop_keyboard(i18n: I18n, locale: str, broadcast_id: int) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(
        text=i18n.gettext("Cancel broadcast", locale=locale), callback_data=f"{STOP_PREFIX}{broadcast_id}"
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


class BroadcastRunner:
    def __init__(
        self,
        bot: Bot,
        pool: asyncpg.Pool,
        i18n: I18n,
        limiter: RateLimiter,
        *,
        poll: float = 1.0,
        progress_every: float = 3.0,
        concurrency: int = 4,
    ) -> None:
        self.bot = bot
        self.pool = pool
        self.i18n = i18n
        self.limiter = limiter
        self.poll = poll
        self.progress_every = progress_every
        self.concurrency = concurrency
        self.owner: int | None = None  # this runner's owner lock key while it runs

    async def recover(self) -> int:
        async with self.pool.acquire() as conn:
            lost = await broadcasts.mark_lost(conn)
        if lost:
            metrics.BROADCAST_MESSAGES.labels("lost").inc(lost)
            log.warning("broadcast messages in flight during a crash marked lost", extra={"count": lost})
        return lost

    async def run(self) -> None:
        async with self._ownership():
            await self.recover()
            while True:
                raise_if_cancelling()
                async with self.pool.acquire() as conn:
                    ids = await broadcasts.running(conn)
                for broadcast_id in ids:
                    await self.run_one(broadcast_id)
                await asyncio.sleep(self.poll)

    @contextlib.asynccontextmanager
    async def _ownership(self) -> AsyncIterator[None]:
        """Hold this runner's owner lock (one pooled connection) while it runs: the rows it claims
        carry the key, and a sibling starting meanwhile leaves them alone."""
        async with self.pool.acquire() as conn:
            self.owner = await broadcasts.take_owner_lock(conn)
            try:
                yield
            finally:
                with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    await broadcasts.release_owner_lock(conn, self.owner)
                self.owner = None

    async def run_one(self, broadcast_id: int) -> None:
        """Send until done or cancelled; the final state is edited into the progress message."""
        async with self.pool.acquire() as conn:
            row = await broadcasts.get(conn, broadcast_id)
        if row is None:
            return
        loop = asyncio.get_running_loop()
        next_report = loop.time() + self.progress_every
        log.info("broadcast running", extra={"broadcast": broadcast_id})
        while True:
            raise_if_cancelling()
            async with self.pool.acquire() as conn:
                if await broadcasts.status(conn, broadcast_id) != "running":
                    break
                users = await broadcasts.claim(conn, broadcast_id, self.concurrency, owner=self.owner)
                if not users:
                    await broadcasts.finish(conn, broadcast_id)
                    break
            async with asyncio.TaskGroup() as tasks:
                sends = [tasks.create_task(self._send(row, user)) for user in users]
            outcomes = [(user, task.result()) for user, task in zip(users, sends, strict=True)]
            async with self.pool.acquire() as conn:
                await broadcasts.resolve(conn, broadcast_id, outcomes)
            for _, outcome in outcomes:
                metrics.BROADCAST_MESSAGES.labels(outcome).inc()
            if loop.time() >= next_report:
                await self.report(broadcast_id)
                next_report = loop.time() + self.progress_every
        await self.report(broadcast_id)

    async def report(self, broadcast_id: int) -> None:
        """Edit the current counts into the admin's progress message."""
        async with self.pool.acquire() as conn:
            row = await broadcasts.get(conn, broadcast_id)
            if row is None:
                return
            progress = await broadcasts.progress(conn, broadcast_id)
        if row["progress_chat_id"] is None or row["progress_message_id"] is None:
            return
        locale = row["admin_language"]
        state = row["status"]
        text = progress_text(self.i18n, locale, broadcast_id, progress, state)
        markup = stop_keyboard(self.i18n, locale, broadcast_id) if state == "running" else None
        try:
            await self.bot.edit_message_text(
                text=text,
                chat_id=row["progress_chat_id"],
                message_id=row["progress_message_id"],
                reply_markup=markup,
            )
        except TelegramRetryAfter as exc:
            self.limiter.pause(exc.retry_after)
        except TelegramAPIError as exc:
            # "message is not modified" and friends: the report is best effort.
            log.info("broadcast progress not edited", extra={"broadcast": broadcast_id, "error": str(exc)})

    async def _send(self, row: asyncpg.Record, user_id: int) -> str:
        """One recipient: `sent`, `blocked` or `failed`."""
        retry_after = network = 0
        while True:
            raise_if_cancelling()
            await self.limiter.acquire(user_id, low_priority=True)
            try:
                if row["text"] is not None:
                    await self.bot.send_message(user_id, row["text"], parse_mode=None)
                else:
                    await self.bot.copy_message(user_id, row["from_chat_id"], row["message_id"])
                return "sent"
            except TelegramRetryAfter as exc:
                self.limiter.pause(exc.retry_after)
                retry_after += 1
                if retry_after > MAX_RETRY_AFTER:
                    return "failed"
            except TelegramForbiddenError:
                return "blocked"
            except TelegramBadRequest as exc:
                return "blocked" if "chat not found" in exc.message.lower() else "failed"
            except (TelegramNetworkError, TelegramServerError) as exc:
                network += 1
                if network > MAX_NETWORK_RETRIES:
                    log.warning("broadcast message failed", extra={"user": user_id, "error": exc.message})
                    return "failed"
                await asyncio.sleep(2**network)
            except TelegramAPIError as exc:
                log.warning("broadcast message failed", extra={"user": user_id, "error": exc.message})
                return "failed"
