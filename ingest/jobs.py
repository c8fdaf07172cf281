"""The leader's periodic jobs (retention, alert outcomes, volume curves) on the ingest scheduler:
one way to schedule them. A run that fails on PostgreSQL or the network is logged and tried again at
the next interval; runs never overlap, and missed ones coalesce into one."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


def schedule_job(
    scheduler: AsyncIOScheduler,
    job_id: str,
    run_once: Callable[[], Awaitable[object]],
    *,
    what: str,
    interval: timedelta,
    first_run_now: bool = True,
) -> None:
    """Run `run_once` every `interval` (first at once, or after one interval)."""

    async def scheduled() -> None:
        try:
            await run_once()
        except (asyncpg.PostgresError, OSError) as exc:
            log.error("%s failed; retrying at the next run", what, extra={"error": str(exc)})

    first = datetime.now(UTC) + (timedelta(0) if first_run_now else interval)
    scheduler.add_job(
        scheduled,
        "interval",
        seconds=interval.total_seconds(),
        id=job_id,
        name=job_id,
        next_run_time=first,
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
