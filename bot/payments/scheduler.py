"""The lifecycle scheduler of the bot service: apscheduler's AsyncIOScheduler runs the tier jobs
every few minutes, the Stars reconciliation once a day and, with `TELEGRAM_PAID_BROADCAST`, the
paid broadcast fees every minute.

The reconciliation runs at RECONCILE_AT; a bot that was down then would skip a day, so at start
`catch_up` runs it at once when its last run (kept in PostgreSQL) is older than CATCH_UP_AFTER,
or when it never ran (a fresh install, which would otherwise wait for its first RECONCILE_AT).

Several bot processes may run; each job takes a PostgreSQL advisory lock first and is skipped when
another process holds it, so one process at a time runs it. The lock is a session lock on one
pooled connection, released when the job ends (or when that connection dies).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from aiogram import Bot
from aiogram.exceptions import AiogramError, TelegramAPIError
from aiogram.utils.i18n import I18n
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.chat_notices import tell_deactivated
from bot.payments.broadcast_fees import collect_fees
from bot.payments.lifecycle import run_lifecycle
from bot.payments.reconcile import reconcile
from core.clock import Clock
from core.settings import Settings
from db import job_locks
from db import payments as payments_db

log = logging.getLogger(__name__)

LIFECYCLE_LOCK = 0x56_53_4C_49_46_45  # "VSLIFE"
RECONCILE_LOCK = 0x56_53_52_45_43_4F  # "VSRECO"
FEES_LOCK = 0x56_53_46_45_45_53  # "VSFEES"
FEES_EVERY = timedelta(minutes=1)
LIFECYCLE_EVERY = timedelta(minutes=5)
RECONCILE_AT = {"hour": 3, "minute": 17}  # UTC, daily
CATCH_UP_AFTER = timedelta(days=1)


class ExclusiveJob:
    """A job that runs only while it holds its advisory lock; `runs` counts the times it ran."""

    def __init__(self, pool: asyncpg.Pool, key: int, name: str, job: Callable[[], Awaitable[object]]) -> None:
        self.pool = pool
        self.key = key
        self.name = name
        self.job = job
        self.runs = 0
        self.skips = 0
        self.active: set[asyncio.Task[object]] = set()  # runs in flight, awaited on shutdown

    async def run(self) -> bool:
        task = asyncio.current_task()
        if task is not None:
            self.active.add(task)
        try:
            return await self._run_locked()
        finally:
            if task is not None:
                self.active.discard(task)

    async def _run_locked(self) -> bool:
        async with job_locks.exclusive(self.pool, self.key) as conn:
            if conn is None:
                self.skips += 1
                log.debug("job skipped: another process runs it", extra={"job": self.name})
                return False
            self.runs += 1
            try:
                await self.job()
            except (TelegramAPIError, asyncpg.PostgresError, OSError) as exc:
                log.error("job failed", extra={"job": self.name, "error": repr(exc)})
        return True


def build_jobs(
    pool: asyncpg.Pool, bot: Bot, settings: Settings, i18n: I18n, clock: Clock
) -> tuple[ExclusiveJob, ExclusiveJob, ExclusiveJob | None]:
    async def lifecycle() -> None:
        await tell_deactivated(pool, bot, i18n)
        report = await run_lifecycle(pool, bot, i18n, clock.now())
        if report.downgraded or report.reminded:
            log.info("lifecycle job", extra={"downgraded": report.downgraded, "reminded": report.reminded})

    async def reconciliation() -> None:
        await reconcile(pool, bot, settings, i18n, clock.now())

    async def fees() -> None:
        await collect_fees(pool, bot)

    return (
        ExclusiveJob(pool, LIFECYCLE_LOCK, "tier-lifecycle", lifecycle),
        ExclusiveJob(pool, RECONCILE_LOCK, "stars-reconciliation", reconciliation),
        ExclusiveJob(pool, FEES_LOCK, "paid-broadcast-fees", fees)
        if settings.telegram_paid_broadcast
        else None,
    )


def build_scheduler(
    lifecycle: ExclusiveJob, reconciliation: ExclusiveJob, fees: ExclusiveJob | None = None
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    # Bound coroutine methods: apscheduler's asyncio executor awaits those (a callable object it
    # would run in a thread).
    scheduler.add_job(
        lifecycle.run,
        IntervalTrigger(seconds=LIFECYCLE_EVERY.total_seconds()),
        id=lifecycle.name,
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        reconciliation.run,
        CronTrigger(**RECONCILE_AT),
        id=reconciliation.name,
        max_instances=1,
        coalesce=True,
    )
    if fees is not None:
        scheduler.add_job(
            fees.run,
            IntervalTrigger(seconds=FEES_EVERY.total_seconds()),
            id=fees.name,
            next_run_time=datetime.now(UTC),  # at start too: what the last run left unread
            max_instances=1,
            coalesce=True,
        )
    return scheduler


async def catch_up(pool: asyncpg.Pool, reconciliation: ExclusiveJob, now: datetime) -> bool:
    """Run the reconciliation now if its last run is older than CATCH_UP_AFTER (or it never ran,
    as on a fresh install); whether it ran
    (another process holding its lock counts as running it)."""
    try:
        async with pool.acquire() as conn:
            last = await payments_db.last_reconciliation(conn)
    except (asyncpg.PostgresError, OSError) as exc:
        log.warning("reconciliation catch-up not checked", extra={"error": repr(exc)})
        return False
    if last is not None and now - last <= CATCH_UP_AFTER:
        return False
    log.info(
        "stars reconciliation overdue; running it at start",
        extra={"last_run": last.isoformat() if last is not None else "never"},
    )
    try:
        await reconciliation.run()
    except (AiogramError, asyncpg.PostgresError, OSError) as exc:  # the daily run tries again
        log.warning("reconciliation catch-up failed", extra={"error": repr(exc)})
        return False
    return True


async def run_scheduler(pool: asyncpg.Pool, bot: Bot, settings: Settings, i18n: I18n, clock: Clock) -> None:
    """Run the lifecycle scheduler until cancelled; a job still running is cancelled and awaited
    on the way out, so its lock and connection are given back before the pool closes."""
    jobs = build_jobs(pool, bot, settings, i18n, clock)
    scheduler = build_scheduler(*jobs)
    scheduler.start()
    try:
        await catch_up(pool, jobs[1], clock.now())
        await asyncio.Event().wait()
    finally:
        scheduler.shutdown(wait=False)
        running = [task for job in jobs if job is not None for task in job.active]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
