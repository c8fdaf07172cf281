"""A scheduled job's advisory lock never stays behind on a pooled connection: a run cancelled at
any moment (a shutdown, a supervisor restart) leaves the lock free, so the next run, on any
connection of the pool, runs instead of finding it "held by another process" forever."""

from __future__ import annotations

import asyncio

import asyncpg

from core.clock import ManualClock
from ingest.outcomes import LOCK_KEY, OutcomesJob
from tests.miniapp_harness import NOW

HELD = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1
"""


async def test_a_run_cancelled_at_any_moment_leaves_the_lock_free(db: asyncpg.Pool) -> None:
    job = OutcomesJob(db, lookback_days=30, clock=ManualClock(NOW))
    for steps in range(12):  # the cancellation lands in the lock's query, the job, or the unlock
        run = asyncio.create_task(job.run_once())
        for _ in range(steps):
            await asyncio.sleep(0)
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        assert await db.fetchval(HELD, LOCK_KEY) == 0, f"the lock stayed held after {steps} steps"
    assert await job.run_once() == 0 and job.runs >= 1  # it runs (nothing owed), not skipped


async def test_a_second_runner_is_skipped_while_the_first_holds_the_lock(
    db: asyncpg.Pool, migrated: str
) -> None:
    other = await asyncpg.connect(migrated)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        job = OutcomesJob(db, lookback_days=30, clock=ManualClock(NOW))
        assert await job.run_once() == 0 and job.runs == 0
    finally:
        await other.close()
    assert await job.run_once() == 0 and job.runs == 1
