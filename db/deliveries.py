"""Delivery rows: claim the due ones, resolve them in batches, report the lost ones.

Life of a row: `pending` (due at `due_at`) → `sending` (claimed, attempts+1, just before the
Telegram call) → `sent` | `blocked` | `failed` | back to `pending` (retry later) | `skipped`.
A row still `sending` when a sender starts was in flight during a crash: it becomes `lost` and
is never sent again (at most once; the loss is counted instead of risking a duplicate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

CLAIM_DUE = """
WITH claimed AS (
    UPDATE deliveries d
    SET status = 'sending', attempts = d.attempts + 1, updated_at = now()
    WHERE d.id IN (
        SELECT id FROM deliveries
        WHERE status = 'pending' AND due_at <= $1
        ORDER BY priority, due_at, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    RETURNING d.id, d.alert_id, d.chat_id, d.priority, d.attempts, d.due_at
)
SELECT c.id, c.alert_id, c.chat_id, c.priority, c.attempts,
       a.symbol, a.asset, a.alert_type, a.hour_ts, a.detected_at, a.current_volume,
       a.previous_volume, a.volume_ratio, a.price, a.funding_rate, a.simulated,
       coalesce(u.language, 'en') AS language,
       ch.kind AS chat_kind,
       CASE
           WHEN ch.id IS NOT NULL THEN CASE WHEN ch.active THEN NULL ELSE 'disconnected' END
           WHEN u.id IS NULL THEN 'unknown user'
           WHEN u.banned THEN 'banned'
           WHEN u.blocked THEN 'blocked'
           WHEN coalesce(s.paused, false) THEN 'paused'
           WHEN EXISTS (
               SELECT 1 FROM mutes m WHERE m.user_id = u.id AND m.symbol = a.symbol AND m.until > $1
           ) THEN 'muted'
       END AS skip_reason
FROM claimed c
JOIN alerts a ON a.id = c.alert_id
LEFT JOIN users u ON u.id = c.chat_id
LEFT JOIN user_settings s ON s.user_id = c.chat_id
LEFT JOIN chats ch ON ch.id = c.chat_id
ORDER BY c.priority, c.due_at, c.id
"""

# One statement for a whole batch of outcomes. A row another process marked `lost` while this one
# still had it in flight is corrected to what really happened.
RESOLVE = """
UPDATE deliveries d
SET status = r.status,
    sent_at = coalesce(r.sent_at, d.sent_at),
    message_id = coalesce(r.message_id, d.message_id),
    error = r.error,
    due_at = coalesce(r.due_at, d.due_at),
    attempts = d.attempts - r.refund,
    updated_at = now()
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[], $5::text[],
            $6::timestamptz[], $7::integer[])
     AS r(id, status, sent_at, message_id, error, due_at, refund)
WHERE d.id = r.id AND d.status IN ('sending', 'lost')
"""

MARK_USERS_BLOCKED = "UPDATE users SET blocked = true WHERE id = ANY($1::bigint[]) AND NOT blocked"
DEACTIVATE_CHATS = "UPDATE chats SET active = false WHERE id = ANY($1::bigint[]) AND active"

MARK_LOST = """
UPDATE deliveries SET status = 'lost', error = 'in flight during a crash', updated_at = now()
WHERE status = 'sending' AND updated_at < now() - $1::interval
"""

MARK_ALL_LOST = """
UPDATE deliveries SET status = 'lost', error = 'in flight during a crash', updated_at = now()
WHERE status = 'sending'
"""

QUEUE_DEPTH = "SELECT count(*) FROM deliveries WHERE status = 'pending' AND due_at <= $1"

STATUS_COUNTS = """
SELECT status, count(*) AS n FROM deliveries WHERE created_at >= $1 GROUP BY status
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed row; `refund` gives back an attempt that did not count."""

    id: int
    status: str
    sent_at: datetime | None = None
    message_id: int | None = None
    error: str | None = None
    due_at: datetime | None = None
    refund: int = 0


async def claim_due(conn: Conn, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Mark up to `limit` due rows `sending` (elite first) and return them with their alert."""
    rows: list[asyncpg.Record] = await conn.fetch(CLAIM_DUE, now, limit)
    return rows


async def resolve(
    conn: Conn,
    outcomes: Sequence[Outcome],
    *,
    blocked_users: Sequence[int] = (),
    dead_chats: Sequence[int] = (),
) -> None:
    """Record a batch of outcomes (and the users/chats that turned out unreachable) atomically."""
    async with conn.transaction():
        await conn.execute(
            RESOLVE,
            [o.id for o in outcomes],
            [o.status for o in outcomes],
            [o.sent_at for o in outcomes],
            [o.message_id for o in outcomes],
            [o.error for o in outcomes],
            [o.due_at for o in outcomes],
            [o.refund for o in outcomes],
        )
        if blocked_users:
            await conn.execute(MARK_USERS_BLOCKED, list(blocked_users))
        if dead_chats:
            await conn.execute(DEACTIVATE_CHATS, list(dead_chats))


async def mark_lost(conn: Conn, *, older_than: timedelta | None = None) -> int:
    """`sending` rows → `lost` (all, or those claimed longer ago than `older_than`); returns the count."""
    if older_than is None:
        status: str = await conn.execute(MARK_ALL_LOST)
    else:
        status = await conn.execute(MARK_LOST, older_than)
    return int(status.rsplit(" ", 1)[-1])


async def queue_depth(conn: Conn, now: datetime) -> int:
    """Pending rows already due (waiting only for the sender)."""
    value: int = await conn.fetchval(QUEUE_DEPTH, now)
    return value


async def status_counts(conn: Conn, since: datetime) -> dict[str, int]:
    rows = await conn.fetch(STATUS_COUNTS, since)
    return {row["status"]: row["n"] for row in rows}
