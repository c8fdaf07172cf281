"""PostgreSQL advisory locks that let one process at a time run a scheduled job."""

from __future__ import annotations

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
