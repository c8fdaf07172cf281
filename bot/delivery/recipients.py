"""Who receives an alert, and when: ONE query that writes the delivery rows.

For an alert row it selects, in a single INSERT … SELECT:

- users who are not banned, have not blocked the bot and have not paused alerts;
- by their effective tier (a paid tier past `tier_expires_at` counts as free);
- alert type: HALF/FULL updates only for tiers with `updates` (elite); tiers with
  `custom_thresholds` (pro, elite) may narrow the types in `user_settings.alert_types`;
- an update follows its SPIKE: a HALF/FULL update goes only to those its SPIKE (same symbol and
  hour) went to (a delivery row that is sent, on its way, or of unknown outcome), and never to
  anyone else; so a user's own thresholds, which apply to SPIKEs, cannot cut off the updates
  of a SPIKE they were sent (an update's ratio or volume may be below them);
- thresholds: pro/elite own `spike_multiple` / `min_quote_volume` against a SPIKE's ratio and
  current volume; free uses the service defaults, which the alert already satisfied;
- watchlist-only: then the symbol must be on the user's watchlist (any tier);
- not muted for this symbol (`mutes.until > now`);
- quiet hours (pro/elite) in the user's IANA time zone, evaluated at the delivery's due time.
  A delivery that would land in quiet hours is SKIPPED, not postponed: a volume spike is news for
  minutes, and "quiet" means no buzz at night, not a pile of stale alerts at 07:00;
- connected groups/channels (`chats.active`): SPIKE alerts only, with their tier's delay.

Due time = the alert's `detected_at` + the tier's delay; priority = the tier's delivery priority.
`ON CONFLICT (alert_id, chat_id) DO NOTHING`: a stream entry read twice creates nothing twice.
That also makes it safe to run the query in chunks of users (`fan_out`), one transaction each,
so the first recipients can be sent to while the rest are still being written: a crash between
chunks re-runs all of them and only the missing rows are added.
The tier numbers come from `core.tiers.TIERS` as query parameters, so they live in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.tasks import raise_if_cancelling
from core.tiers import TIERS

Conn = asyncpg.Connection | PoolConnectionProxy

INSERT_DELIVERIES = """
WITH tier AS (
    SELECT *
    FROM unnest($3::text[], $4::smallint[], $5::interval[], $6::boolean[], $7::boolean[])
         AS t(name, priority, delay, updates, custom)
),
alert AS (
    SELECT * FROM alerts WHERE id = $1
),
people AS (
    SELECT u.id AS chat_id, t.priority, a.detected_at + t.delay AS due_at
    FROM alert a
    CROSS JOIN users u
    LEFT JOIN user_settings s ON s.user_id = u.id
    JOIN tier t ON t.name = CASE
        WHEN u.tier <> 'free' AND u.tier_expires_at IS NOT NULL AND u.tier_expires_at <= $2 THEN 'free'
        ELSE u.tier
    END
    WHERE u.id > $8 AND ($9::bigint IS NULL OR u.id <= $9)
      AND NOT u.banned
      AND NOT u.blocked
      AND NOT coalesce(s.paused, false)
      AND (a.alert_type = 'SPIKE' OR t.updates)
      AND (
          NOT t.custom OR s.user_id IS NULL OR (
              a.alert_type = ANY (s.alert_types)
              AND (a.alert_type <> 'SPIKE' OR s.spike_multiple IS NULL OR a.volume_ratio >= s.spike_multiple)
              AND (
                  a.alert_type <> 'SPIKE' OR s.min_quote_volume IS NULL
                  OR a.current_volume >= s.min_quote_volume
              )
              AND (
                  s.quiet_start IS NULL
                  OR NOT in_quiet_hours(a.detected_at + t.delay, s.timezone, s.quiet_start, s.quiet_end)
              )
          )
      )
      AND (
          NOT coalesce(s.watchlist_only, false)
          OR EXISTS (SELECT 1 FROM watchlists w WHERE w.user_id = u.id AND w.symbol = a.symbol)
      )
      AND (
          a.alert_type = 'SPIKE' OR EXISTS (
              SELECT 1 FROM alerts spike
              JOIN deliveries d ON d.alert_id = spike.id AND d.chat_id = u.id
              WHERE spike.symbol = a.symbol AND spike.hour_ts = a.hour_ts AND spike.alert_type = 'SPIKE'
                AND d.status IN ('sent', 'pending', 'sending', 'unknown', 'lost')
          )
      )
      AND NOT EXISTS (
          SELECT 1 FROM mutes m WHERE m.user_id = u.id AND m.symbol = a.symbol AND m.until > $2
      )
),
groups AS (
    SELECT c.id AS chat_id, t.priority, a.detected_at + t.delay AS due_at
    FROM alert a
    JOIN chats c ON c.active
    JOIN tier t ON t.name = c.tier
    WHERE a.alert_type = 'SPIKE' AND $10::boolean
)
INSERT INTO deliveries (alert_id, chat_id, priority, due_at)
SELECT $1, chat_id, priority, due_at FROM (SELECT * FROM people UNION ALL SELECT * FROM groups) r
ORDER BY priority, chat_id
ON CONFLICT (alert_id, chat_id) DO NOTHING
"""


def _tier_parameters() -> tuple[list[str], list[int], list[object], list[bool], list[bool]]:
    names = [str(tier) for tier in TIERS]
    return (
        names,
        [TIERS[t].delivery_priority for t in TIERS],
        [TIERS[t].alert_delay for t in TIERS],
        [TIERS[t].updates for t in TIERS],
        [TIERS[t].custom_thresholds for t in TIERS],
    )


async def insert_deliveries(
    conn: Conn,
    alert_id: int,
    now: datetime,
    *,
    after_user: int = 0,
    upto_user: int | None = None,
    with_chats: bool = True,
) -> int:
    """Write one pending delivery per recipient of alert `alert_id` among users with
    `after_user < id <= upto_user` (and connected chats when `with_chats`); returns how many were new."""
    status: str = await conn.execute(
        INSERT_DELIVERIES, alert_id, now, *_tier_parameters(), after_user, upto_user, with_chats
    )
    return int(status.rsplit(" ", 1)[-1])


CHUNK_END = "SELECT id FROM users WHERE id > $1 ORDER BY id OFFSET $2 LIMIT 1"


FIRST_CHUNK = 100  # users in the first transaction: the first messages can leave within ms


async def fan_out(
    pool: asyncpg.Pool,
    alert_id: int,
    now: datetime,
    *,
    chunk: int = 1000,
    first_chunk: int = FIRST_CHUNK,
    on_chunk: Callable[[int], None] = lambda inserted: None,
    finish: Callable[[Conn], Awaitable[None]] | None = None,
) -> int:
    """All recipients of an alert, `chunk` users per transaction (`first_chunk` in the first, so
    the sender can start before a large audience is written); `on_chunk(inserted)` after each
    commit. `finish(conn)` runs inside the last chunk's transaction (the fan-out worker records
    the alert's fan-out there, atomically with its last delivery rows)."""
    total = 0
    after = 0
    first = True
    while True:
        raise_if_cancelling()
        size = min(first_chunk, chunk) if first else chunk
        async with pool.acquire() as conn, conn.transaction():
            upto: int | None = await conn.fetchval(CHUNK_END, after, size - 1)
            inserted = await insert_deliveries(
                conn, alert_id, now, after_user=after, upto_user=upto, with_chats=first
            )
            if upto is None and finish is not None:
                await finish(conn)
        total += inserted
        on_chunk(inserted)
        if upto is None:
            return total
        after, first = upto, False
