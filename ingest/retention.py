"""The retention job: tomorrow's daily candle partition exists, expired days are dropped,
mark/funding snapshots older than CANDLE_RETENTION_DAYS, delivery rows older than
DELIVERY_RETENTION_DAYS and the recipient rows of broadcasts finished before then are deleted
(in batches, `db.retention`), so no table grows without bound.

Scheduled with APScheduler's AsyncIOScheduler, hourly (idempotent, so a process that was
down at midnight catches up at its next run) and once right at start, before any candle is
written.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, timedelta

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.clock import Clock, SystemClock
from db import retention as db_retention
from db.partitions import maintain
from ingest.jobs import schedule_job

log = logging.getLogger(__name__)

JOB_ID = "candle-retention"


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one run did."""

    partitions_created: int
    partitions_dropped: int
    mark_snapshots_deleted: int
    deliveries_deleted: int
    broadcast_recipients_deleted: int


async def _yield() -> None:
    await asyncio.sleep(0)  # between two full delete batches: let the services' work run


class RetentionJob:
    def __init__(
        self,
        pool: asyncpg.Pool,
        retention_days: int,
        *,
        delivery_retention_days: int = 30,
        batch: int = db_retention.DEFAULT_BATCH,
        clock: Clock | None = None,
    ) -> None:
        self._pool = pool
        self._retention_days = retention_days
        self._delivery_retention_days = delivery_retention_days
        self._batch = batch
        self._clock = clock or SystemClock()
        self.runs = 0

    async def run_once(self) -> RetentionRun:
        """Create partitions up to tomorrow, drop those past retention, delete mark snapshots,
        delivery rows and finished broadcasts' recipient rows past theirs."""
        now = self._clock.now().astimezone(UTC)
        created, dropped = await maintain(self._pool, now.date(), self._retention_days)
        marks = await db_retention.delete_mark_snapshots_before(
            self._pool, now - timedelta(days=self._retention_days), batch=self._batch, between=_yield
        )
        delivery_cutoff = now - timedelta(days=self._delivery_retention_days)
        deliveries = await db_retention.delete_deliveries_before(
            self._pool, delivery_cutoff, batch=self._batch, between=_yield
        )
        recipients = await db_retention.delete_broadcast_recipients_before(
            self._pool, delivery_cutoff, batch=self._batch, between=_yield
        )
        await db_retention.delete_day_counts_before(self._pool, delivery_cutoff)
        self.runs += 1
        run = RetentionRun(created, dropped, marks, deliveries, recipients)
        if created or dropped or marks or deliveries or recipients:
            log.info(
                "retention applied",
                extra={
                    "partitions_created": created,
                    "partitions_dropped": dropped,
                    "mark_snapshots_deleted": marks,
                    "deliveries_deleted": deliveries,
                    "broadcast_recipients_deleted": recipients,
                },
            )
        return run

    def schedule(self, scheduler: AsyncIOScheduler, *, interval: timedelta = timedelta(hours=1)) -> None:
        schedule_job(
            scheduler, JOB_ID, self.run_once, what="retention", interval=interval, first_run_now=False
        )
