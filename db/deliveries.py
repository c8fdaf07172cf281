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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from db import owner_locks

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
       a.projected_volume,
       coalesce(ch.language, u.language, 'en') AS language,
       coalesce(s.timezone, 'UTC') AS timezone,
       sp.detected_at AS spike_at, sp.current_volume AS spike_volume, sp.volume_ratio AS spike_ratio,
       sp.price AS spike_price,
       em.message_id AS edit_message_id, em.sent_at AS edit_sent_at,
       -- an update waits while an earlier row of its symbol-hour for the chat is not settled (its
       -- SPIKE in flight or due): it edits what that row sends, and never overtakes it
       a.alert_type IN ('HALF_UPDATE', 'FULL_UPDATE') AND EXISTS (
           SELECT 1
           FROM alerts pa
           JOIN deliveries pd ON pd.alert_id = pa.id AND pd.chat_id = c.chat_id
           WHERE pa.symbol = a.symbol AND pa.hour_ts = a.hour_ts AND pa.alert_type <> 'EARLY'
             AND pd.id < c.id AND pd.status IN ('pending', 'sending')
       ) AS behind,
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
       END AS skip_reason,
       -- the daily cap (core.daily_cap), only for a SPIKE row of a user who set one: today's
       -- SPIKE messages and held-back rows since midnight in the user's zone
       CASE WHEN s.daily_cap IS NOT NULL AND a.alert_type = 'SPIKE' THEN s.daily_cap END AS daily_cap,
       cap.sent_today AS cap_sent_today, cap.held_assets AS cap_held_assets,
       cap.held_ratios AS cap_held_ratios, cap.held_today AS cap_held_today,
       cap.summary_id AS cap_summary_id,
       -- a capped user's SPIKEs go one at a time (the count must see the previous one's outcome):
       -- this one waits while another is in flight or an earlier one is due
       s.daily_cap IS NOT NULL AND a.alert_type = 'SPIKE' AND EXISTS (
           SELECT 1 FROM deliveries bd
           WHERE bd.chat_id = c.chat_id AND bd.spike_hour IS NOT NULL AND bd.sent_at IS NULL
             AND bd.status IN ('pending', 'sending') AND bd.id <> c.id
             AND (bd.status = 'sending' OR (bd.id < c.id AND bd.due_at <= $1))
       ) AS cap_behind,
       -- an update of a SPIKE the cap held back is not sent
       a.alert_type IN ('HALF_UPDATE', 'FULL_UPDATE') AND EXISTS (
           SELECT 1 FROM deliveries cs
           WHERE cs.chat_id = c.chat_id AND cs.spike_symbol = a.symbol AND cs.spike_hour = a.hour_ts
             AND cs.capped
       ) AS spike_capped,
       -- the burst digest (core.digest): the chat's other SPIKEs of the minute before a SPIKE, whether
       -- one of them is still due or in flight, the chat's digest holding one of them (where its list
       -- starts) and that digest's message (NULL: its first message's outcome is not known)
       coalesce(bp.burst_peers, 0) AS burst_peers, coalesce(bp.spike_behind, false) AS spike_behind,
       dm.message_id AS digest_message_id, dm.sent_at AS digest_sent_at, dg.digest_since
FROM claimed c
JOIN alerts a ON a.id = c.alert_id
LEFT JOIN users u ON u.id = c.chat_id
LEFT JOIN user_settings s ON s.user_id = c.chat_id
LEFT JOIN chats ch ON ch.id = c.chat_id
-- an update's SPIKE is the chat's own of that symbol-hour (the public one, or a crossing of
-- its own thresholds): the one SPIKE delivery the chat has for it (deliveries_one_spike_key).
-- LIMIT 1 (there is at most one) keeps the subquery apart, so it is looked up by the whole key,
-- chat first, and not at all for a SPIKE; joined into the outer query, it was planned as a scan of
-- the symbol-hour's SPIKE rows for every claimed row (7,750 x 128 rows, 3 s a claim).
LEFT JOIN LATERAL (
    SELECT sp.detected_at, sp.current_volume, sp.volume_ratio, sp.price
    FROM deliveries sd
    JOIN alerts sp ON sp.id = sd.alert_id
    WHERE a.alert_type IN ('HALF_UPDATE', 'FULL_UPDATE')
      AND sd.chat_id = c.chat_id AND sd.spike_symbol = a.symbol AND sd.spike_hour = a.hour_ts
    LIMIT 1
) sp ON true
-- an update edits the chat's latest message of that symbol-hour: its SPIKE's, or the message an
-- earlier update of the hour had to be sent as (never an early warning's, which stays as it was
-- said); found through the hour's few alerts and the chat's row of each (UNIQUE (alert_id, chat_id))
LEFT JOIN LATERAL (
    SELECT pd.message_id, pd.sent_at
    FROM alerts pa
    JOIN deliveries pd ON pd.alert_id = pa.id AND pd.chat_id = c.chat_id
    WHERE a.alert_type IN ('HALF_UPDATE', 'FULL_UPDATE')
      AND pa.symbol = a.symbol AND pa.hour_ts = a.hour_ts AND pa.alert_type <> 'EARLY'
      AND pd.id <> c.id AND pd.status = 'sent' AND pd.message_id IS NOT NULL
      AND pd.digest_since IS NULL  -- never a burst digest (it lists other symbols)
      AND NOT pd.capped  -- a held-back SPIKE's message is the daily cap's summary
    ORDER BY pd.sent_at DESC, pd.id DESC
    LIMIT 1
) em ON true
-- a capped user's day (core.daily_cap): their SPIKE rows sent since local midnight, through
-- deliveries_spike_day_idx; the held-back ones listed in the day's latest summary (`summary_id`)
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE NOT td.capped) AS sent_today,
           count(*) FILTER (WHERE td.capped) AS held_today,
           (array_agg(td.message_id ORDER BY td.sent_at DESC, td.id DESC) FILTER (WHERE td.capped))[1]
               AS summary_id,
           (array_agg(ta.asset ORDER BY td.sent_at, td.id) FILTER (WHERE td.capped))[1:40] AS held_assets,
           (array_agg(ta.volume_ratio ORDER BY td.sent_at, td.id) FILTER (WHERE td.capped))[1:40]
               AS held_ratios
    FROM deliveries td
    -- each row's alert by its primary key (OFFSET 0: not flattened into a hash of all alerts)
    CROSS JOIN LATERAL (
        SELECT al.asset, al.volume_ratio FROM alerts al WHERE al.id = td.alert_id OFFSET 0
    ) ta
    WHERE s.daily_cap IS NOT NULL AND a.alert_type = 'SPIKE'
      AND td.chat_id = c.chat_id AND td.spike_hour IS NOT NULL AND td.status = 'sent'
      AND td.sent_at >= date_trunc('day', $1 AT TIME ZONE s.timezone) AT TIME ZONE s.timezone
) cap ON true
-- a SPIKE's burst (core.digest, WINDOW = 60 s): the chat's other SPIKE rows (sent, in flight or
-- due) whose alert came within the minute before it, found by (chat_id, spike_hour) in this hour
-- and the one before (deliveries_chat_spikes_idx)
LEFT JOIN LATERAL (
    SELECT count(*) AS burst_peers, bool_or(bd.status IN ('pending', 'sending')) AS spike_behind
    FROM deliveries bd
    JOIN alerts ba ON ba.id = bd.alert_id
    WHERE a.alert_type = 'SPIKE'
      AND bd.chat_id = c.chat_id AND bd.spike_hour IN (a.hour_ts, a.hour_ts - interval '1 hour')
      AND bd.id <> c.id AND bd.status IN ('pending', 'sending', 'sent')
      AND NOT bd.capped  -- held back by the daily cap: not a message
      AND ba.detected_at >= a.detected_at - interval '60 seconds'
      AND (ba.detected_at, bd.id) < (a.detected_at, c.id)
) bp ON true
-- ... the chat's digest that holds the latest of them (a burst goes on): a row marked before its
-- digest was sent or edited, sent or of unknown outcome (killed in flight) ...
LEFT JOIN LATERAL (
    SELECT gd.digest_since
    FROM deliveries gd
    JOIN alerts ga ON ga.id = gd.alert_id
    WHERE a.alert_type = 'SPIKE'
      AND gd.chat_id = c.chat_id AND gd.spike_hour IN (a.hour_ts, a.hour_ts - interval '1 hour')
      AND gd.id <> c.id AND gd.status IN ('sent', 'unknown') AND gd.digest_since IS NOT NULL
      AND ga.detected_at >= a.detected_at - interval '60 seconds'
      AND (ga.detected_at, gd.id) < (a.detected_at, c.id)
    ORDER BY ga.detected_at DESC, gd.id DESC
    LIMIT 1
) dg ON true
-- ... and its message: the latest one known sent of that digest (its rows share `digest_since`)
LEFT JOIN LATERAL (
    SELECT md.message_id, md.sent_at
    FROM deliveries md
    WHERE md.chat_id = c.chat_id AND md.spike_hour > dg.digest_since - interval '1 hour'
      AND md.digest_since = dg.digest_since AND md.status = 'sent' AND md.message_id IS NOT NULL
    ORDER BY md.sent_at DESC, md.id DESC
    LIMIT 1
) dm ON true
ORDER BY c.priority, c.due_at, c.id
"""

# One statement for a whole batch of outcomes. A row another process marked `unknown` (its lease
# ran out) while this one still had it in flight is corrected to what really happened.
RESOLVE = """
UPDATE deliveries d
SET status = r.status,
    sent_at = coalesce(r.sent_at, d.sent_at),
    message_id = coalesce(r.message_id, d.message_id),
    edited = r.edited,
    -- marked before its digest went out (db.digest.MARK); cleared when the row is given back
    digest_since = CASE WHEN r.status = 'pending' THEN NULL ELSE coalesce(r.digest_since, d.digest_since) END,
    error = r.error,
    due_at = coalesce(r.due_at, d.due_at),
    attempts = d.attempts - r.refund,
    updated_at = now(),
    capped = d.capped OR r.capped
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[], $5::text[],
            $6::timestamptz[], $7::integer[], $8::boolean[], $9::boolean[], $10::timestamptz[])
     AS r(id, status, sent_at, message_id, error, due_at, refund, edited, capped, digest_since)
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

# Each running sender holds its owner lock (db.owner_locks, class SENDER_LOCK_CLASS) and writes
# its owner into the rows it claims. A `sending` row whose owner holds no lock (or that has no
# owner) was left by a process that died; a living sibling's rows in flight are not touched.
SENDER_LOCK_CLASS = 1447316548  # 'VSPD'
MARK_ORPHANS_UNKNOWN = f"""
UPDATE deliveries d SET status = 'unknown', error = 'in flight during a crash', updated_at = now()
WHERE d.status = 'sending'
  AND (d.claimed_by IS NULL OR NOT d.claimed_by = ANY ({owner_locks.LIVE_OWNERS}))
"""

# The alert's age is looked up per due row through its primary key: due rows are few, the alerts
# many (a join would hash the whole alerts table at every sweep).
EXPIRE_DUE = """
UPDATE deliveries d SET status = 'expired', error = 'older than ALERT_MAX_AGE', updated_at = now()
WHERE d.status = 'pending' AND d.due_at <= $1
  AND (SELECT a.detected_at FROM alerts a WHERE a.id = d.alert_id) < $1 - $2::interval
"""

# A group became a supergroup (Telegram's `migrate_to_chat_id`): the connected chat and its
# deliveries move to the new id. A delivery the new id already has for the same alert (or a SPIKE
# of the same symbol-hour) is not sent twice: the old row is skipped. The row that met the error is
# given back, due now.
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
  AND NOT EXISTS (
      SELECT 1 FROM deliveries o
      WHERE o.chat_id = $2
        AND (o.alert_id = d.alert_id OR (o.spike_symbol = d.spike_symbol AND o.spike_hour = d.spike_hour))
  )
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
    edited: bool = False  # sent by editing the chat's message of the symbol-hour (`message_id`)
    capped: bool = False  # a SPIKE the daily cap held back: `message_id` is the day's summary
    digest_since: datetime | None = None  # sent in the chat's burst digest, which lists from then


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
    update with the figures of the SPIKE it follows, `spike_*`, and the chat's latest message of
    the symbol-hour to edit, `edit_message_id` sent at `edit_sent_at`, and `behind`: an earlier
    row of its symbol-hour for the chat is still pending or in flight), the recipient's time zone, whether
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
            [o.edited for o in outcomes],
            [o.capped for o in outcomes],
            [o.digest_since for o in outcomes],
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
    """Hold a fresh sender owner key on `conn`'s session; the key to write into claimed rows."""
    return await owner_locks.take(conn, SENDER_LOCK_CLASS)


async def release_owner_lock(conn: Conn, owner: int) -> None:
    await owner_locks.release(conn, SENDER_LOCK_CLASS, owner)


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
