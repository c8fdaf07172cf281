"""Who receives an alert, and when: ONE query that writes the delivery rows.

For an alert row it selects, in a single INSERT … SELECT:

- users who are not banned, have not blocked the bot and have not paused alerts;
- by their effective tier (a paid tier past `tier_expires_at` counts as free);
- alert type: HALF/FULL updates only for tiers with `updates` (elite); tiers with
  `custom_thresholds` (pro, elite) may narrow the types in `user_settings.alert_types`;
- thresholds: a user's SPIKE of a symbol-hour is the earliest SPIKE row of that hour (the public
  one or a crossing, `core.presets`) whose ratio and current volume are at or above the
  user's own `spike_multiple` / `min_quote_volume` (pro/elite; NULL, and every free user: the
  service defaults, which every row satisfies, so theirs is the public SPIKE): the hour's first
  moment at or above both, with the figures of that moment. Connected chats get public SPIKEs;
- one SPIKE per chat and symbol-hour: SPIKE deliveries carry their symbol-hour, unique per chat
  (`deliveries_one_spike_key`), so a user who changes thresholds mid-hour gets no second one;
- an update follows its SPIKE: a HALF/FULL update goes only to those a SPIKE of the same
  symbol-hour went to (a delivery row that is sent, on its way, or of unknown outcome), the
  HALF if that SPIKE came at minute <= 20, the FULL unless it came at minute >= 55, and never
  to anyone else; so a user's own thresholds cannot cut off the updates of a SPIKE they were
  sent (an update's ratio or volume may be below them);
- watchlist-only: then the symbol must be on the user's watchlist (any tier);
- not muted for this symbol (`mutes.until > now`);
- quiet hours (pro/elite) in the user's IANA time zone, evaluated at the delivery's due time.
  A delivery that would land in quiet hours is SKIPPED, not postponed: a volume spike is news for
  minutes, and "quiet" means no buzz at night, not a pile of stale alerts at 07:00;
- early warnings (EARLY, `core.pace`): pro/elite users who chose the type in
  `user_settings.alert_types` (not in the default types). A user's EARLY of a symbol-hour is the
  earliest EARLY row of that hour whose projected total reaches their own multiple (NULL: the
  public row, which projects the default's) while the hour's ratio is still below it, and their
  minimum volume; one per chat and symbol-hour (`deliveries_one_early_key`), and none once the
  chat has its SPIKE of that symbol-hour;
- connected groups/channels (`chats.active`): SPIKE alerts only, with their tier's delay.

Due time = the alert's `detected_at` + the tier's delay; priority = the tier's delivery priority.
`ON CONFLICT DO NOTHING` (on (alert_id, chat_id) and on the one-SPIKE key): a stream entry read
twice creates nothing twice.
That also makes it safe to run the query in chunks of users (`fan_out`), one transaction each,
so the first recipients can be sent to while the rest are still being written: a crash between
chunks re-runs all of them and only the missing rows are added.
The tier numbers come from `core.tiers.TIERS` as query parameters, so they live in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.alerts import FULL_FIRST_SKIP_MINUTE, HALF_LAST_SPIKE_MINUTE
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
-- SPIKE rows of the same symbol-hour before this one: a user whose thresholds one of them
-- satisfies had (or passed) their SPIKE there.
earlier AS MATERIALIZED (
    SELECT e.volume_ratio, e.current_volume
    FROM alert a
    JOIN alerts e ON e.symbol = a.symbol AND e.hour_ts = a.hour_ts AND e.alert_type = 'SPIKE'
    WHERE a.alert_type = 'SPIKE' AND (e.detected_at, e.id) < (a.detected_at, a.id)
),
-- EARLY rows of the same symbol-hour before this one: a user one of them projected their own
-- multiple for (while the hour was below it) had their early warning there.
earlier_early AS MATERIALIZED (
    SELECT e.volume_ratio, e.previous_volume, e.projected_volume, e.level_multiple
    FROM alert a
    JOIN alerts e ON e.symbol = a.symbol AND e.hour_ts = a.hour_ts AND e.alert_type = 'EARLY'
    WHERE a.alert_type = 'EARLY' AND (e.detected_at, e.id) < (a.detected_at, a.id)
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
      AND (a.alert_type IN ('SPIKE', 'EARLY') OR t.updates)
      AND (  -- a crossing follows the public SPIKE, which is the first row the defaults accept
          a.level_multiple IS NULL
          OR (t.custom AND (s.spike_multiple IS NOT NULL OR s.min_quote_volume IS NOT NULL))
      )
      AND (
          a.alert_type <> 'EARLY' OR (
              t.custom AND s.user_id IS NOT NULL
              AND (  -- projects the user's multiple while the hour is below it; the default's: the public row
                  (s.spike_multiple IS NULL AND a.level_multiple IS NULL)
                  OR (
                      a.projected_volume >= s.spike_multiple * a.previous_volume
                      AND a.volume_ratio < s.spike_multiple
                  )
              )
              AND (s.min_quote_volume IS NULL OR a.projected_volume >= s.min_quote_volume)
              AND NOT EXISTS (
                  SELECT 1 FROM earlier_early e
                  WHERE (
                      (s.spike_multiple IS NULL AND e.level_multiple IS NULL)
                      OR (
                          e.projected_volume >= s.spike_multiple * e.previous_volume
                          AND e.volume_ratio < s.spike_multiple
                      )
                  )
                  AND (s.min_quote_volume IS NULL OR e.projected_volume >= s.min_quote_volume)
              )
              AND NOT EXISTS (  -- an early warning comes before the user's SPIKE, never after it
                  SELECT 1 FROM deliveries sd
                  WHERE sd.chat_id = u.id AND sd.spike_symbol = a.symbol AND sd.spike_hour = a.hour_ts
              )
          )
      )
      AND (
          a.alert_type <> 'SPIKE' OR NOT EXISTS (
              SELECT 1 FROM earlier e
              WHERE NOT t.custom OR s.user_id IS NULL OR (
                  (s.spike_multiple IS NULL OR e.volume_ratio >= s.spike_multiple)
                  AND (s.min_quote_volume IS NULL OR e.current_volume >= s.min_quote_volume)
              )
          )
      )
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
          a.alert_type IN ('SPIKE', 'EARLY') OR EXISTS (
              SELECT 1 FROM alerts spike
              JOIN deliveries d ON d.alert_id = spike.id AND d.chat_id = u.id
              WHERE spike.symbol = a.symbol AND spike.hour_ts = a.hour_ts AND spike.alert_type = 'SPIKE'
                AND d.status IN ('sent', 'pending', 'sending', 'unknown', 'lost')
                AND spike.detected_at < a.hour_ts + CASE a.alert_type WHEN 'HALF_UPDATE' THEN $11::interval
                                                                      ELSE $12::interval END
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
    WHERE a.alert_type = 'SPIKE' AND a.level_multiple IS NULL AND $10::boolean
)
INSERT INTO deliveries (alert_id, chat_id, priority, due_at, spike_symbol, spike_hour,
                        early_symbol, early_hour)
SELECT $1, r.chat_id, r.priority, r.due_at,
       CASE WHEN a.alert_type = 'SPIKE' THEN a.symbol END,
       CASE WHEN a.alert_type = 'SPIKE' THEN a.hour_ts END,
       CASE WHEN a.alert_type = 'EARLY' THEN a.symbol END,
       CASE WHEN a.alert_type = 'EARLY' THEN a.hour_ts END
FROM (SELECT * FROM people UNION ALL SELECT * FROM groups) r
CROSS JOIN alert a
ORDER BY r.priority, r.chat_id
ON CONFLICT DO NOTHING
"""

# An update goes to a chat whose SPIKE of the hour was detected before these (minute <= 20: HALF;
# minute < 55: FULL), the detector's rule for the public SPIKE applied to each chat's own.
HALF_BEFORE = timedelta(minutes=HALF_LAST_SPIKE_MINUTE + 1)
FULL_BEFORE = timedelta(minutes=FULL_FIRST_SKIP_MINUTE)


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
        INSERT_DELIVERIES,
        alert_id,
        now,
        *_tier_parameters(),
        after_user,
        upto_user,
        with_chats,
        HALF_BEFORE,
        FULL_BEFORE,
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
