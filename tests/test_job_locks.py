"""A scheduled job's advisory lock never stays behind on a pooled connection: a run cancelled at
any moment (a shutdown, a supervisor restart) leaves the lock free, so the next run, on any
connection of the pool, runs instead of finding it "held by another process" forever.

Each test uses a key of its own: the session's database may hold the jobs' real keys for
services other tests still run."""

from __future__ import annotations

import asyncio
import random

import asyncpg

from db import job_locks

HELD = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1
"""


async def _job(pool: asyncpg.Pool, key: int, ran: list[int]) -> None:
    """What OutcomesJob.run_once and ExclusiveJob do: the block runs queries while it holds the lock."""
    async with job_locks.exclusive(pool, key) as conn:
        if conn is None:
            return
        await conn.fetchval("SELECT 1")
        await asyncio.sleep(0)
        await conn.fetchval("SELECT 2")
        ran.append(key)


async def _freed(db: asyncpg.Pool, key: int) -> bool:
    """Whether no session holds `key` within 5 s: a closed connection's backend ends (and its
    lock goes) a moment after the client closed the socket."""
    for _ in range(100):
        if await db.fetchval(HELD, key) == 0:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_run_cancelled_at_any_moment_leaves_the_lock_free(db: asyncpg.Pool) -> None:
    key = random.randrange(1 << 40, 1 << 50)
    ran: list[int] = []
    for steps in range(16):  # the cancellation lands in the lock's query, the block, or the unlock
        run = asyncio.create_task(_job(db, key, ran))
        for _ in range(steps):
            await asyncio.sleep(0)
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        assert await _freed(db, key), f"the lock stayed held after {steps} steps"
    ran.clear()
    await _job(db, key, ran)
    assert ran == [key]  # it runs, not skipped


async def test_a_second_runner_is_skipped_while_the_first_holds_the_lock(
    db: asyncpg.Pool, migrated: str
) -> None:
    key = random.randrange(1 << 40, 1 << 50)
    ran: list[int] = []
    other = await asyncpg.connect(migrated)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", key)
        await _job(db, key, ran)
        assert ran == []
    finally:
        await other.close()
    assert await _freed(db, key)  # the other session's backend has ended
    await _job(db, key, ran)
    assert ran == [key]
