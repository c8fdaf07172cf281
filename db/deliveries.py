"""Delivery rows: claim the due ones, resolve them in batches, count the ones with no known outcome.

Life of a row: `pending` (due at `due_at`) → `sending` (claimed, attempts+1, just before the
Telegram call) → `sent` | `blocked` | `failed` | `skipped` | `expired` | `unknown` | back to
`pending` (known not sent: retry later, or given back on a clean shutdown).

`unknown` means Telegram may or may not have the message (a timeout or a reset after the request
was written, a 5xx, or a crash while the request was open): it is never sent again. A row still
`sending` whose sender process died (it no longer holds its owner lock) becomes `unknown` too.
`expired`: the alert was older than ALERT_MAX_AGE when it would have been sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

# One index-friendly statement per lane, each a LIMIT over `deliveries_claim_idx` in its order:
# the rows of both lanes are then updated by primary key (`= ANY (ARRAY(...))`), never by a scan
# of the table (an `id IN (...) OR id IN (...)` is planned as a sequential scan of all rows).
CLAIM_DUE = """
WITH first_lane AS (
    SELECT id FROM deliveries
    WHERE status = 'pending' AND due_at <= $1 AND priority <= $5
    ORDER BY priority, due_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), rest_lane AS (
    SELECT id FROM deliveries
    WHERE status = 'pending' AND due_at <= $1 AND priority > $5
    ORDER BY priority, due_at, id
    LIMIT $6
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE deliveries d
    SET status = 'sending', attempts = d.attempts + 1, updated_at = now(), claimed_by = $7
    WHERE d.id = ANY (ARRAY(SELECT id FROM first_lane UNION ALL SELECT id FROM rest_lane))
    RETURNING d.id, d.alert_id, d.chat_id, d.priority, d.attempts, d.due_at
)
SELECT c.id, c.alert_id, c.chat_id, c.priority, c.attempts,
       a.detected_at < $1 - $3::interval AS expired,
       a.symbol, a.asset, a.alert_type, a.hour_ts, a.detected_at, a.current_volume,
       a.previous_volume, a.volume_ratio, a.price, a.funding_rate, a.simulated, a.context,
       coalesce(ch.language, u.language, 'en') AS language,
       coalesce(s.timezone, 'UTC') AS timezone,
       sp.detected_at AS spike_at, sp.current_volume AS spike_volume, sp.volume_ratio AS spike_ratio,
       sp.price AS spike_price,
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
           WHEN c.priority = ANY ($4::smallint[])
                AND s.quiet_start IS NOT NULL
                AND in_quiet_hours($1, s.timezone, s.quiet_start, s.quiet_end) THEN 'quiet hours'
       END AS skip_reason
FROM claimed c
JOIN alerts a ON a.id = c.alert_id
LEFT JOIN users u ON u.id = c.chat_id
LEFT JOIN user_settings s ON s.user_id = c.chat_id
LEFT JOIN chats ch ON ch.id = c.chat_id
LEFT JOIN alerts sp ON a.alert_type <> 'SPIKE'
                   AND sp.symbol = a.symbol AND sp.hour_ts = a.hour_ts AND sp.alert_type = 'SPIKE'
ORDER BY c.priority, c.due_at, c.id
"""

# One statement for a whole batch of outcomes. A row another process marked `unknown` (its lease
# ran out) while this one still had it in flight is corrected to what really happened.
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
WHERE d.id = r.id AND d.status IN ('sending', 'unknown')
"""

MARK_USERS_BLOCKED = "UPDATE users SET blocked = true WHERE id = ANY($1::bigint[]) AND NOT blocked"
# The admin who connected the chat is told later (bot.chat_notices), from `deactivation_told`.
DEACTIVATE_CHATS = """
UPDATE chats SET active = false, deactivated_at = now(), deactivation_told = false
WHERE id = ANY($1::bigint[]) AND active
"""

MARK_STALE_UNKNOWN = """
UPDATE deliveries SET status = 'unknown', error = 'in flight during a crash', updated_at = now()
WHERE status = 'sending' AND updated_at < now() - $1::interval
"""

# Each running sender holds the session advisory lock (SENDER_LOCK_CLASS, owner) and writes its
# owner into the rows it claims. A `sending` row whose owner holds no lock (or that has no owner)
# was left by a process that died; a living sibling's rows in flight are not touched.
SENDER_LOCK_CLASS = 1447316548  # 'VSPD'
TRY_OWNER_LOCK = "SELECT pg_try_advisory_lock($1::integer, $2::integer)"
OWNER_UNLOCK = "SELECT pg_advisory_unlock($1::integer, $2::integer)"
MARK_ORPHANS_UNKNOWN = """
UPDATE deliveries d SET status = 'unknown', error = 'in flight during a crash', updated_at = now()
WHERE d.status = 'sending'
  AND (d.claimed_by IS NULL OR NOT d.claimed_by = ANY (ARRAY(
      SELECT l.objid::bigint FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = $1::oid
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  )))
"""

# The alert's age is looked up per due row through its primary key: due rows are few, the alerts
# many (a join would hash the whole alerts table at every sweep).
EXPIRE_DUE = """
UPDATE deliveries d SET status = 'expired', error = 'older than ALERT_MAX_AGE', updated_at = now()
WHERE d.status = 'pending' AND d.due_at <= $1
  AND (SELECT a.detected_at FROM alerts a WHERE a.id = d.alert_id) < $1 - $2::interval
"""

# A group became a supergroup (Telegram's `migrate_to_chat_id`): the connected chat and its
# deliveries move to the new id. A delivery the new id already has for the same alert is not sent
# twice: the old row is skipped. The row that met the error is given back, due now.
RETRY_AFTER_MIGRATION = """
UPDATE deliveries SET status = 'pending', attempts = attempts - 1, due_at = $2, error = $3,
                      updated_at = now()
WHERE id = $1 AND status IN ('sending', 'unknown')
"""
MOVE_CHAT = """
UPDATE chats SET id = $2, kind = 'supergroup'
WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM chats WHERE id = $2)
"""
DROP_MIGRATED_CHAT = "DELETE FROM chats WHERE id = $1 AND EXISTS (SELECT 1 FROM chats WHERE id = $2)"
MOVE_CHAT_DELIVERIES = """
UPDATE deliveries d SET chat_id = $2, updated_at = now()
WHERE d.chat_id = $1
  AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.alert_id = d.alert_id AND o.chat_id = $2)
"""
SKIP_MIGRATED_DUPLICATES = """
UPDATE deliveries SET status = 'skipped', error = 'chat migrated; the new chat has this alert',
                      updated_at = now()
WHERE chat_id = $1 AND status IN ('pending', 'sending')
"""

QUEUE_STATE = """
SELECT count(*) AS depth, min(due_at) AS oldest FROM deliveries WHERE status = 'pending' AND due_at <= $1
"""

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


async def claim_due(
    conn: Conn,
    now: datetime,
    limit: int,
    *,
    max_age: timedelta,
    quiet_priorities: Sequence[int],
    split: tuple[int, int] | None = None,
    owner: int | None = None,
) -> list[asyncpg.Record]:
    """Mark up to `limit` due rows `sending` (elite first) and return them with their alert (an
    update with the figures of the SPIKE it follows, `spike_*`), the recipient's time zone, whether
    the alert is older than `max_age`, and why the row must be skipped now, if it must: the
    recipient left, paused, muted the symbol, or (for the `quiet_priorities`, the tiers that have
    quiet hours) is in quiet hours at `now`.

    With `split = (priority, rest_limit)`, `limit` counts only rows of that priority or a lower
    (earlier) one, and up to `rest_limit` rows of the later priorities are claimed beside them:
    two lanes, each with its own budget. `owner`: the claiming sender's lock key (`take_owner_lock`)."""
    through, rest_limit = split if split is not None else (32767, 0)
    rows: list[asyncpg.Record] = await conn.fetch(
        CLAIM_DUE, now, limit, max_age, list(quiet_priorities), through, rest_limit, owner
    )
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


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def mark_unknown(conn: Conn, *, older_than: timedelta | None = None) -> int:
    """`sending` rows → `unknown`: those whose process died (its owner lock is gone), or those
    claimed longer ago than `older_than`: their request was possibly open. Returns the count."""
    if older_than is None:
        return _count(await conn.execute(MARK_ORPHANS_UNKNOWN, SENDER_LOCK_CLASS))
    return _count(await conn.execute(MARK_STALE_UNKNOWN, older_than))


async def take_owner_lock(conn: Conn) -> int:
    """Hold a fresh sender owner key on `conn`'s session (until it is unlocked or the session ends);
    the key to write into claimed rows."""
    while True:
        owner = secrets.randbelow(2**31 - 2) + 1
        if await conn.fetchval(TRY_OWNER_LOCK, SENDER_LOCK_CLASS, owner):
            return owner


async def release_owner_lock(conn: Conn, owner: int) -> None:
    await conn.execute(OWNER_UNLOCK, SENDER_LOCK_CLASS, owner)


async def expire_due(conn: Conn, now: datetime, max_age: timedelta) -> int:
    """Due `pending` rows whose alert is older than `max_age` → `expired`; returns the count."""
    return _count(await conn.execute(EXPIRE_DUE, now, max_age))


async def migrate_chat(conn: Conn, delivery_id: int, old_chat: int, new_chat: int, now: datetime) -> None:
    """Move a group that became a supergroup to its new id, and give `delivery_id` back due `now`."""
    async with conn.transaction():
        await conn.execute(
            RETRY_AFTER_MIGRATION, delivery_id, now, f"chat migrated from {old_chat} to {new_chat}"
        )
        await conn.execute(MOVE_CHAT, old_chat, new_chat)
        await conn.execute(DROP_MIGRATED_CHAT, old_chat, new_chat)
        await conn.execute(MOVE_CHAT_DELIVERIES, old_chat, new_chat)
        await conn.execute(SKIP_MIGRATED_DUPLICATES, old_chat)


async def queue_state(conn: Conn, now: datetime) -> tuple[int, float]:
    """Pending rows already due (waiting only for the sender), and how long the oldest of them has
    been due, in seconds (0 when none is)."""
    row = await conn.fetchrow(QUEUE_STATE, now)
    assert row is not None
    oldest: datetime | None = row["oldest"]
    return int(row["depth"]), (now - oldest).total_seconds() if oldest is not None else 0.0


async def status_counts(conn: Conn, since: datetime) -> dict[str, int]:
    rows = await conn.fetch(STATUS_COUNTS, since)
    return {row["status"]: row["n"] for row in rows}
