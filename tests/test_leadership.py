"""One leader per advisory lock (ingest shards, the bot's poller), on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from db import job_locks
from db.leadership import Leadership

FAST = {"retry": 0.2, "check": 0.1, "check_timeout": 0.5}


class Leaders:
    """Counts who leads right now, and the most that ever led at once."""

    def __init__(self) -> None:
        self.now: list[str] = []
        self.terms: list[str] = []  # every start of a leader, in order
        self.most = 0
        self.changed = asyncio.Event()

    def lead(self, name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            self.now.append(name)
            self.terms.append(name)
            self.most = max(self.most, len(self.now))
            self.changed.set()
            try:
                await asyncio.Event().wait()
            finally:
                self.now.remove(name)
                self.changed.set()

        return run

    async def wait_for(self, who: list[str], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while self.now != who:
                self.changed.clear()
                await self.changed.wait()


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _key() -> int:
    return random.randrange(1, 2**40)  # the session database is shared by the tests


async def test_second_process_stands_by_and_takes_over_when_the_leader_stops(migrated: str) -> None:
    key, leaders = _key(), Leaders()
    standby_reports = 0

    async def on_standby() -> None:
        nonlocal standby_reports
        standby_reports += 1

    a = asyncio.create_task(Leadership(migrated, key, "a", **FAST).run(leaders.lead("a")))
    await leaders.wait_for(["a"])
    standby = Leadership(migrated, key, "b", on_standby=on_standby, **FAST)
    b = asyncio.create_task(standby.run(leaders.lead("b")))
    await asyncio.sleep(1.0)
    assert leaders.now == ["a"] and standby_reports >= 2
    await _stop(a)
    await leaders.wait_for(["b"])
    await _stop(b)
    assert leaders.most == 1


async def test_leader_whose_session_is_killed_stops_and_never_overlaps_the_next(migrated: str) -> None:
    key, leaders = _key(), Leaders()
    a = asyncio.create_task(Leadership(migrated, key, "a", **FAST).run(leaders.lead("a")))
    await leaders.wait_for(["a"])
    b = asyncio.create_task(Leadership(migrated, key, "b", **FAST).run(leaders.lead("b")))
    await asyncio.sleep(0.5)
    admin = await asyncpg.connect(migrated)
    try:
        pid = await admin.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid",
            key,
        )
        assert pid is not None
        await admin.execute("SELECT pg_terminate_backend($1)", pid)  # what a PostgreSQL restart does
    finally:
        await admin.close()
    # "a" stops as soon as its check fails; whoever takes the lock next leads alone.
    async with asyncio.timeout(10):
        while len(leaders.terms) < 2 or not leaders.now:
            leaders.changed.clear()
            await leaders.changed.wait()
    assert leaders.most == 1, leaders.terms
    await _stop(a)
    await _stop(b)
    assert leaders.most == 1


async def test_holds_is_true_only_for_the_session_with_the_lock(migrated: str) -> None:
    key = _key()
    one, two = await asyncpg.connect(migrated), await asyncpg.connect(migrated)
    try:
        assert not await job_locks.holds(one, key)
        assert await job_locks.try_lock(one, key)
        assert await job_locks.holds(one, key) and not await job_locks.holds(two, key)
        assert not await job_locks.try_lock(two, key)
        await one.close()  # the session ends: the lock is free
        assert await job_locks.try_lock(two, key) and await job_locks.holds(two, key)
    finally:
        await two.close()
        if not one.is_closed():
            await one.close()


async def test_a_crash_of_the_leader_is_raised_and_lets_the_lock_go(migrated: str) -> None:
    key = _key()

    async def crash() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await Leadership(migrated, key, "a", **FAST).run(crash)
    conn = await asyncpg.connect(migrated)
    try:
        assert await job_locks.try_lock(conn, key)
    finally:
        await conn.close()
