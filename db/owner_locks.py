"""Process ownership of rows in flight: a running process holds a session advisory lock
(`lock_class`, owner) on one connection and writes `owner` into the rows it claims. A row whose
owner no longer holds its lock (or that has no owner) was left by a process that died; the rows a
living sibling has in flight are not touched (`LIVE_OWNERS`).

Used by the delivery sender (`db.deliveries`) and the broadcast runner (`db.broadcasts`), each
with its own lock class.
"""

from __future__ import annotations

import secrets

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

TRY_OWNER_LOCK = "SELECT pg_try_advisory_lock($1::integer, $2::integer)"
OWNER_UNLOCK = "SELECT pg_advisory_unlock($1::integer, $2::integer)"
# The owners of `lock_class` (the statement's parameter $1) whose process is alive: an array to
# test a row's owner against with `= ANY (...)`.
LIVE_OWNERS = """ARRAY(
      SELECT l.objid::bigint FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = $1::oid
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  )"""


async def take(conn: Conn, lock_class: int) -> int:
    """Hold a fresh owner key of `lock_class` on `conn`'s session (until it is released or the
    session ends); the key to write into claimed rows."""
    while True:
        owner = secrets.randbelow(2**31 - 2) + 1
        if await conn.fetchval(TRY_OWNER_LOCK, lock_class, owner):
            return owner


async def release(conn: Conn, lock_class: int, owner: int) -> None:
    await conn.execute(OWNER_UNLOCK, lock_class, owner)
