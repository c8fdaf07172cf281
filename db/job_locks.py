"""PostgreSQL advisory locks that let one process at a time run a scheduled job."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
UNLOCK = "SELECT pg_advisory_unlock($1)"


async def try_lock(conn: Conn, key: int) -> bool:
    """Take the session-level lock `key` without waiting; False when another session holds it."""
    return bool(await conn.fetchval(TRY_LOCK, key))


async def unlock(conn: Conn, key: int) -> None:
    await conn.execute(UNLOCK, key)


@contextlib.asynccontextmanager
async def exclusive(pool: asyncpg.Pool, key: int) -> AsyncIterator[Conn | None]:
    """A pooled connection holding the session-level lock `key` for the block, or None when
    another session holds it. The lock never goes back to the pool with the connection (the
    pool's release does not unlock advisory locks: `db.pool._keep_session`): when taking or
    releasing it is interrupted (a cancellation, an error), the connection is closed instead, and
    the server drops the lock with the session."""
    async with pool.acquire() as conn:
        try:
            held = await try_lock(conn, key)
        except BaseException:
            conn.terminate()  # the lock may have been granted with no answer read
            raise
        if not held:
            yield None
            return
        try:
            yield conn
        finally:
            try:
                await unlock(conn, key)
            except BaseException:
                conn.terminate()
                raise


# A bigint key shows in pg_locks as classid = its high 32 bits, objid = its low 32, objsubid = 1.
HOLDS = """
SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
      AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1
)
"""


async def holds(conn: Conn, key: int) -> bool:
    """Whether this session holds the session-level lock `key` (asked of the server itself)."""
    return bool(await conn.fetchval(HOLDS, key))
