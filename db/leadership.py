"""One leader among several processes, through a PostgreSQL session-level advisory lock.

Every process of a role tries the role's lock on a connection of its own. The one that gets it
leads: it runs `lead()`. The others stand by and try again every `retry` seconds. When the
leader dies (kill -9, OOM, a lost node) PostgreSQL ends its session and frees the lock, and a
standby takes over at its next try.

The leader asks PostgreSQL every `check` seconds whether its session still holds the lock. An
answer other than yes within `check_timeout` (PostgreSQL restarted, the connection cut) stops
`lead()` at once, and the process goes back to standing by. A new leader waits `grace`
(`check + check_timeout` by default) after taking the lock before it starts, so a leader that
lost its session has stopped by then: never two leaders at once.

Used by ingest (one leader per shard, `ingest.leadership`) and by the bot (one long poller).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from core.tasks import raise_if_cancelling
from db import job_locks
from db.unavailable import PG_UNAVAILABLE

log = logging.getLogger(__name__)

LOCK_ERRORS: tuple[type[Exception], ...] = (*PG_UNAVAILABLE, asyncpg.PostgresError)
RETRY = 5.0  # seconds between two tries of a standby
CHECK = 1.0  # seconds between two checks of the leader's lock
CHECK_TIMEOUT = 2.0


class Leadership:
    """Runs `lead()` while this process holds the advisory lock `key`; stands by otherwise."""

    def __init__(
        self,
        database_url: str,
        key: int,
        name: str,
        *,
        on_standby: Callable[[], Awaitable[None]] | None = None,
        retry: float = RETRY,
        check: float = CHECK,
        check_timeout: float = CHECK_TIMEOUT,
        grace: float | None = None,
    ) -> None:
        self.database_url = database_url
        self.key = key
        self.name = name
        self.on_standby = on_standby
        self.retry = retry
        self.check = check
        self.check_timeout = check_timeout
        # after taking the lock, before leading: a leader that lost its session has stopped
        self.grace = check + check_timeout if grace is None else grace
        self.terms = 0  # how often this process became the leader

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Until cancelled. A crash of `lead()` is raised (the supervisor restarts the process's
        service, which lets the lock go meanwhile)."""
        while True:
            raise_if_cancelling()
            conn = await self._acquire()
            try:
                await asyncio.sleep(self.grace)
                if await self._holds(conn):
                    self.terms += 1
                    log.info("leader", extra={"role": self.name, "term": self.terms})
                    await self._lead(conn, lead)
            finally:
                conn.terminate()  # the session ends: PostgreSQL frees the lock for a standby
            log.error("leadership ended: standing by", extra={"role": self.name})

    async def _acquire(self) -> asyncpg.Connection:
        """A connection whose session holds the lock; stands by (retrying) until then."""
        conn: asyncpg.Connection | None = None
        announced = False
        held = False
        try:
            while True:
                raise_if_cancelling()
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.database_url, timeout=self.check_timeout)
                    async with asyncio.timeout(self.check_timeout):
                        held = await job_locks.try_lock(conn, self.key)
                    if held:
                        return conn
                    if not announced:
                        log.info("standing by: another process leads", extra={"role": self.name})
                        announced = True
                except LOCK_ERRORS as exc:
                    log.warning("lock not asked", extra={"role": self.name, "error": repr(exc)})
                    if conn is not None:
                        conn.terminate()
                    conn = None
                if self.on_standby is not None:
                    await self.on_standby()
                await asyncio.sleep(self.retry)
        finally:
            if not held and conn is not None:  # cancelled while standing by
                conn.terminate()

    async def _holds(self, conn: asyncpg.Connection) -> bool:
        try:
            async with asyncio.timeout(self.check_timeout):
                return await job_locks.holds(conn, self.key)
        except LOCK_ERRORS as exc:
            log.error("lock not confirmed", extra={"role": self.name, "error": repr(exc)})
            return False

    async def _lead(self, conn: asyncpg.Connection, lead: Callable[[], Awaitable[None]]) -> None:
        """Run `lead()` until it ends or the lock is no longer confirmed."""

        async def service() -> None:
            await lead()

        task = asyncio.create_task(service(), name=f"{self.name}-leader")
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=self.check)
                if not task.done() and not await self._holds(conn):
                    break
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise_if_cancelling()  # our own cancellation, not the service's, goes on
        if not task.cancelled():
            task.result()  # a crash of the service is raised
