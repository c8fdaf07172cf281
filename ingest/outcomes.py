"""The outcomes job: every SPIKE whose next horizon (+15 min, +1 h, +4 h) has passed gets its
outcome computed from `candles_1m` (`core.outcomes`) and stored (`db.alert_outcomes`).

It keeps no state of its own: each run asks the database which alerts are owed a horizon, so
a run after downtime catches up on all of them, and a re-run (or a second runner) changes
nothing. A horizon is computed `grace` after its candle closed, so the candle writer has
flushed it; what is still missing then is stored as unknown and stays so. Runs on ingest
shard 0 (like the retention job), every `interval`, and once right at start; one runner at a
time through its PostgreSQL advisory lock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.clock import Clock, SystemClock
from core.outcomes import BTC, MINUTE, compute_outcome, horizon_candle, minute_floor, passed_horizon
from core.tasks import raise_if_cancelling
from db import alert_outcomes as db_outcomes
from db import job_locks
from ingest.jobs import schedule_job

log = logging.getLogger(__name__)

JOB_ID = "alert-outcomes"
LOCK_KEY = 0x56_53_4F_55_54_43  # "VSOUTC"
GRACE = timedelta(minutes=2)
BATCH = 200


class OutcomesJob:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        lookback_days: int,
        clock: Clock | None = None,
        grace: timedelta = GRACE,
        batch: int = BATCH,
    ) -> None:
        self._pool = pool
        self._lookback = timedelta(days=lookback_days)  # no candles are kept beyond it
        self._clock = clock or SystemClock()
        self._grace = grace
        self._batch = batch
        self.runs = 0

    async def run_once(self) -> int:
        """Compute every owed horizon; how many outcomes were stored (0 when another process
        holds the job's lock and runs it)."""
        async with job_locks.exclusive(self._pool, LOCK_KEY) as conn:
            if conn is None:
                return 0
            stored = await self._catch_up(conn)
        self.runs += 1
        if stored:
            log.info("alert outcomes stored", extra={"outcomes": stored})
        return stored

    async def _catch_up(self, conn: db_outcomes.Executor) -> int:
        now = self._clock.now().astimezone(UTC)
        stored = 0
        after: tuple[datetime, int] | None = None
        while True:
            raise_if_cancelling()
            page = await db_outcomes.pending(
                conn,
                ready_before=now - self._grace - MINUTE,
                since=now - self._lookback,
                limit=self._batch,
                after=after,
            )
            for alert in page:
                horizon = passed_horizon(alert.detected_at, now, self._grace)
                if horizon is None or (alert.stored_horizon or 0) >= horizon:
                    continue
                last = horizon_candle(alert.detected_at, horizon)
                own = await db_outcomes.minutes(conn, alert.symbol, alert.hour, last)
                btc = (
                    own
                    if alert.symbol == BTC
                    else await db_outcomes.minutes(conn, BTC, minute_floor(alert.detected_at), last)
                )
                outcome = compute_outcome(
                    detected_at=alert.detected_at,
                    hour=alert.hour,
                    price=alert.price,
                    horizon_minutes=horizon,
                    minutes=own,
                    btc=btc,
                )
                stored += await db_outcomes.store(conn, alert.id, outcome, now)
            if len(page) < self._batch:
                return stored
            after = (page[-1].detected_at, page[-1].id)

    def schedule(self, scheduler: AsyncIOScheduler, *, interval: timedelta = timedelta(minutes=1)) -> None:
        schedule_job(scheduler, JOB_ID, self.run_once, what="alert outcomes", interval=interval)
