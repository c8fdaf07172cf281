"""Broadcasts: a draft, its recipients once confirmed, their claims and the progress counters.

A recipient row is `pending` → `sending` (claimed just before the call) → `sent` | `blocked` |
`failed`. A row still `sending` when a runner starts, whose runner died (its owner lock is gone,
`db.owner_locks`), was in flight during a crash: `lost`, never re-sent (counted with the failures
in the progress report). The rows a living sibling runner has in flight are left to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from db import owner_locks

Conn = asyncpg.Connection | PoolConnectionProxy

CREATE_DRAFT = """
INSERT INTO broadcasts (admin_id, text, from_chat_id, message_id)
VALUES ($1, $2, $3, $4)
RETURNING id
"""

GET = """
SELECT id, admin_id, text, from_chat_id, message_id, status, progress_chat_id, progress_message_id,
       total, sent, blocked, failed,
       coalesce((SELECT language FROM users WHERE users.id = broadcasts.admin_id), 'en') AS admin_language
FROM broadcasts WHERE id = $1
"""

START = """
UPDATE broadcasts SET status = 'running'
WHERE id = $1 AND status = 'draft'
RETURNING id
"""

ADD_RECIPIENTS = """
INSERT INTO broadcast_recipients (broadcast_id, user_id)
SELECT $1, id FROM users WHERE NOT banned AND NOT blocked
ON CONFLICT DO NOTHING
"""

SET_TOTAL = """
UPDATE broadcasts SET total = (SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = $1)
WHERE id = $1
RETURNING total
"""

SET_PROGRESS_MESSAGE = """
UPDATE broadcasts SET progress_chat_id = $2, progress_message_id = $3 WHERE id = $1
"""

CANCEL = """
UPDATE broadcasts SET status = 'cancelled', finished_at = now()
WHERE id = $1 AND status IN ('draft', 'running')
RETURNING id
"""

AUDIENCE = "SELECT count(*) FROM users WHERE NOT banned AND NOT blocked"

RUNNING = "SELECT id FROM broadcasts WHERE status = 'running' ORDER BY id"

STATUS = "SELECT status FROM broadcasts WHERE id = $1"

CLAIM = """
UPDATE broadcast_recipients r SET status = 'sending', claimed_by = $3
WHERE (r.broadcast_id, r.user_id) IN (
    SELECT broadcast_id, user_id FROM broadcast_recipients
    WHERE broadcast_id = $1 AND status = 'pending'
    ORDER BY user_id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
RETURNING r.user_id
"""

RESOLVE = """
UPDATE broadcast_recipients r SET status = v.status
FROM unnest($2::bigint[], $3::text[]) AS v(user_id, status)
WHERE r.broadcast_id = $1 AND r.user_id = v.user_id AND r.status = 'sending'
"""

MARK_USERS_BLOCKED = "UPDATE users SET blocked = true WHERE id = ANY($1::bigint[]) AND NOT blocked"

BROADCAST_LOCK_CLASS = 1447310658  # 'VSBB'
MARK_LOST = f"""
UPDATE broadcast_recipients SET status = 'lost'
WHERE status = 'sending' AND (claimed_by IS NULL OR NOT claimed_by = ANY ({owner_locks.LIVE_OWNERS}))
"""

COUNT = """
SELECT
    count(*) FILTER (WHERE status = 'sent') AS sent,
    count(*) FILTER (WHERE status = 'blocked') AS blocked,
    count(*) FILTER (WHERE status IN ('failed', 'lost')) AS failed,
    count(*) FILTER (WHERE status IN ('pending', 'sending')) AS remaining
FROM broadcast_recipients WHERE broadcast_id = $1
"""

STORE_COUNTS = """
UPDATE broadcasts SET sent = $2, blocked = $3, failed = $4 WHERE id = $1
"""

# The final counts are stored with the state change, so a finished broadcast never shows stale ones.
FINISH = """
UPDATE broadcasts b
SET status = 'done', finished_at = now(), sent = c.sent, blocked = c.blocked, failed = c.failed
FROM (
    SELECT
        count(*) FILTER (WHERE status = 'sent') AS sent,
        count(*) FILTER (WHERE status = 'blocked') AS blocked,
        count(*) FILTER (WHERE status IN ('failed', 'lost')) AS failed
    FROM broadcast_recipients WHERE broadcast_id = $1
) c
WHERE b.id = $1 AND b.status = 'running'
RETURNING b.id
"""


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    sent: int
    blocked: int
    failed: int
    remaining: int


async def create_draft(
    conn: Conn,
    admin_id: int,
    *,
    text: str | None = None,
    from_chat_id: int | None = None,
    message_id: int | None = None,
) -> int:
    broadcast_id: int = await conn.fetchval(CREATE_DRAFT, admin_id, text, from_chat_id, message_id)
    return broadcast_id


async def get(conn: Conn, broadcast_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(GET, broadcast_id)
    return row


async def start(conn: Conn, broadcast_id: int) -> int | None:
    """Draft → running with one recipient row per reachable user; None if it was not a draft."""
    async with conn.transaction():
        if await conn.fetchval(START, broadcast_id) is None:
            return None
        await conn.execute(ADD_RECIPIENTS, broadcast_id)
        total: int = await conn.fetchval(SET_TOTAL, broadcast_id)
        return total


async def set_progress_message(conn: Conn, broadcast_id: int, chat_id: int, message_id: int) -> None:
    await conn.execute(SET_PROGRESS_MESSAGE, broadcast_id, chat_id, message_id)


async def cancel(conn: Conn, broadcast_id: int) -> bool:
    return await conn.fetchval(CANCEL, broadcast_id) is not None


async def audience(conn: Conn) -> int:
    """How many users a broadcast confirmed now would reach."""
    value: int = await conn.fetchval(AUDIENCE)
    return value


async def running(conn: Conn) -> list[int]:
    return [row["id"] for row in await conn.fetch(RUNNING)]


async def status(conn: Conn, broadcast_id: int) -> str | None:
    value: str | None = await conn.fetchval(STATUS, broadcast_id)
    return value


async def claim(conn: Conn, broadcast_id: int, limit: int, *, owner: int | None = None) -> list[int]:
    """Mark up to `limit` pending recipients `sending`, owned by `owner` (`take_owner_lock`)."""
    return [row["user_id"] for row in await conn.fetch(CLAIM, broadcast_id, limit, owner)]


async def resolve(conn: Conn, broadcast_id: int, outcomes: Sequence[tuple[int, str]]) -> None:
    blocked = [user for user, result in outcomes if result == "blocked"]
    async with conn.transaction():
        await conn.execute(RESOLVE, broadcast_id, [u for u, _ in outcomes], [s for _, s in outcomes])
        if blocked:
            await conn.execute(MARK_USERS_BLOCKED, blocked)


async def mark_lost(conn: Conn) -> int:
    """`sending` rows whose runner died (its owner lock is gone) → `lost`; returns the count."""
    result: str = await conn.execute(MARK_LOST, BROADCAST_LOCK_CLASS)
    return int(result.rsplit(" ", 1)[-1])


async def take_owner_lock(conn: Conn) -> int:
    """Hold a fresh runner owner key on `conn`'s session; the key to write into claimed rows."""
    return await owner_locks.take(conn, BROADCAST_LOCK_CLASS)


async def release_owner_lock(conn: Conn, owner: int) -> None:
    await owner_locks.release(conn, BROADCAST_LOCK_CLASS, owner)


async def progress(conn: Conn, broadcast_id: int) -> Progress:
    """Counts from the recipient rows (the source of truth), also stored on the broadcast row."""
    row = await conn.fetchrow(COUNT, broadcast_id)
    assert row is not None
    await conn.execute(STORE_COUNTS, broadcast_id, row["sent"], row["blocked"], row["failed"])
    total = row["sent"] + row["blocked"] + row["failed"] + row["remaining"]
    return Progress(total, row["sent"], row["blocked"], row["failed"], row["remaining"])


async def finish(conn: Conn, broadcast_id: int) -> bool:
    return await conn.fetchval(FINISH, broadcast_id) is not None
