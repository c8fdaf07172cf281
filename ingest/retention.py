"""The candle retention job: tomorrow's daily partition exists, expired days are dropped.

Scheduled with APScheduler's AsyncIOScheduler, hourly (idempotent, so a process that was
down at midnight catches up at its next run) and once right at start, before any candle is
written.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from db.partitions import maintain
from volspike.clock import Clock, SystemClock

log = logging.getLogger(__name__)

JOB_ID = "candle-retention"


class RetentionJob:
    def __init__(self, pool: asyncpg.Pool, retention_days: int, *, clock: Clock | None = None) -> None:
        self._pool = pool
        self._retention_days = retention_days
        self._clock = clock or SystemClock()
        self.runs = 0

    async def run_once(self) -> tuple[int, int]:
        """Create partitions up to tomorrow, drop those past retention; (created, dropped)."""
        today = self._clock.now().astimezone(UTC).date()
        created, dropped = await maintain(self._pool, today, self._retention_days)
        self.runs += 1
        if created or dropped:
            log.info(
                "candle partitions maintained",
                extra={"partitions_created": created, "partitions_dropped": dropped},
            )
        return created, dropped

    async def _scheduled(self) -> None:
        try:
            await self.run_once()
        except (asyncpg.PostgresError, OSError) as exc:
            log.error("candle retention failed; retrying at the next run", extra={"error": str(exc)})

    def schedule(self, scheduler: AsyncIOScheduler, *, interval: timedelta = timedelta(hours=1)) -> None:
        scheduler.add_job(
            self._scheduled,
            "interval",
            seconds=interval.total_seconds(),
            id=JOB_ID,
            next_run_time=datetime.now(UTC) + interval,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )
