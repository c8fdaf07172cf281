"""The retention job: tomorrow's daily candle partition exists, expired days are dropped, and
mark/funding snapshots older than the retention are deleted.

Scheduled with APScheduler's AsyncIOScheduler, hourly (idempotent, so a process that was
down at midnight catches up at its next run) and once right at start, before any candle is
written.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from db import marks as db_marks
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
        """Create partitions up to tomorrow, drop those past retention, delete mark snapshots
        older than the retention; (partitions created, partitions dropped)."""
        now = self._clock.now().astimezone(UTC)
        created, dropped = await maintain(self._pool, now.date(), self._retention_days)
        marks = await db_marks.delete_before(self._pool, now - timedelta(days=self._retention_days))
        self.runs += 1
        if created or dropped or marks:
            log.info(
                "candle partitions maintained",
                extra={
                    "partitions_created": created,
                    "partitions_dropped": dropped,
                    "mark_snapshots_deleted": marks,
                },
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
