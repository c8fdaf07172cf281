"""Alert rows: insert once per (symbol, hour, type) (crossings: once per grade too), publish and
fan-out bookkeeping, and readers.

A crossing of own thresholds (`level_multiple` set, `Alert.level`) is delivered like any alert but
is not public: the readers here (and db/alert_feed.py, db/alert_history.py) show public alerts only
(`PUBLIC`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from core.alerts import Alert, AlertType, Level
from db.alert_context import context_from_db

Conn = asyncpg.Connection | PoolConnectionProxy
Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

COLUMNS = (
    "id, symbol, asset, alert_type, hour_ts, detected_at, current_volume, previous_volume, "
    "volume_ratio, price, funding_rate, simulated, context, level_multiple, level_volume, projected_volume"
)

PUBLIC = "level_multiple IS NULL"  # the service's own alerts, as opposed to crossings

# Two unique keys: (symbol, hour, type) among public alerts, and with the grade among crossings.
INSERT = """
INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume,
                    previous_volume, volume_ratio, price, funding_rate, simulated, context,
                    level_multiple, level_volume, projected_volume)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::jsonb, $13, $14, $15)
ON CONFLICT DO NOTHING
RETURNING id
"""

MARK_PUBLISHED = """
UPDATE alerts SET published_at = now() WHERE id = ANY($1::bigint[]) AND published_at IS NULL
"""

# Rows to publish, locked so that two publishers never take the same row at the same time.
LOCK_UNPUBLISHED = f"""
SELECT {COLUMNS} FROM alerts
WHERE published_at IS NULL AND publish_failed_at IS NULL
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED
"""

LOCK_UNPUBLISHED_BY_ID = f"""
SELECT {COLUMNS} FROM alerts
WHERE id = $1 AND published_at IS NULL AND publish_failed_at IS NULL
FOR UPDATE SKIP LOCKED
"""

COUNT_UNPUBLISHED = "SELECT count(*) FROM alerts WHERE published_at IS NULL AND publish_failed_at IS NULL"

# A row that cannot be published: set aside, and never fanned out either.
DEAD_LETTER = """
UPDATE alerts
SET publish_failed_at = now(), publish_error = $2,
    fanout_failed_at = coalesce(fanout_failed_at, now()), fanout_error = coalesce(fanout_error, $2)
WHERE id = $1
"""

FIRED_SINCE = """
SELECT symbol, hour_ts, alert_type, detected_at, previous_volume, volume_ratio, current_volume,
       level_multiple IS NOT NULL AS crossing, coalesce(projected_volume, 0) AS projected_volume
FROM alerts
WHERE hour_ts >= $1
ORDER BY id
"""

# Fan-out: PostgreSQL, not the Redis stream, says which alerts still need their delivery rows.
FANOUT_DUE = """
SELECT id FROM alerts
WHERE fanned_out_at IS NULL AND fanout_failed_at IS NULL AND id > $1
ORDER BY id
LIMIT $2
"""

MARK_FANNED_OUT = "UPDATE alerts SET fanned_out_at = $2 WHERE id = $1 AND fanned_out_at IS NULL"

# SET expressions see the row before the update: `fanout_attempts + 1` is the new count.
RECORD_FANOUT_FAILURE = """
UPDATE alerts
SET fanout_attempts = fanout_attempts + 1,
    fanout_error = $2,
    fanout_failed_at = CASE WHEN fanout_attempts + 1 >= $3 THEN $4::timestamptz END
WHERE id = $1 AND fanned_out_at IS NULL
RETURNING fanout_attempts, fanout_failed_at IS NOT NULL AS dead
"""

EXPIRE_FANOUT = """
UPDATE alerts
SET fanout_failed_at = $2, fanout_error = 'expired: detected before the fan-out age limit'
WHERE fanned_out_at IS NULL AND fanout_failed_at IS NULL AND detected_at < $1
RETURNING id, symbol, alert_type, detected_at
"""

GET = f"SELECT {COLUMNS} FROM alerts WHERE id = $1"

FIND_ID = f"SELECT id FROM alerts WHERE symbol = $1 AND hour_ts = $2 AND alert_type = $3 AND {PUBLIC}"

LATEST = f"""
SELECT {COLUMNS} FROM alerts
WHERE ($2::bigint IS NULL OR id < $2) AND {PUBLIC}
ORDER BY detected_at DESC, id DESC
LIMIT $1
"""

LATEST_FOR_SYMBOL = f"""
SELECT {COLUMNS} FROM alerts
WHERE symbol = $1 AND ($3::bigint IS NULL OR id < $3) AND {PUBLIC}
ORDER BY detected_at DESC, id DESC
LIMIT $2
"""


def from_row(row: asyncpg.Record) -> Alert:
    level = row["level_multiple"]
    return Alert(
        symbol=row["symbol"],
        asset=row["asset"],
        alert_type=AlertType(row["alert_type"]),
        hour=row["hour_ts"],
        detected_at=row["detected_at"],
        current_volume=row["current_volume"],
        previous_volume=row["previous_volume"],
        ratio=row["volume_ratio"],
        price=row["price"],
        funding_rate=row["funding_rate"],
        id=row["id"],
        simulated=row["simulated"],
        context=context_from_db(row["context"]),
        level=None if level is None else Level(level, row["level_volume"]),
        projected_volume=row["projected_volume"],
    )


async def insert_alert(conn: Executor, alert: Alert) -> int | None:
    """Insert the alert; its id, or None when (symbol, hour, type) already has a row (a crossing:
    (symbol, hour, type, level))."""
    alert_id: int | None = await conn.fetchval(
        INSERT,
        alert.symbol,
        alert.asset,
        alert.alert_type.value,
        alert.hour,
        alert.detected_at,
        alert.current_volume,
        alert.previous_volume,
        alert.ratio,
        alert.price,
        alert.funding_rate,
        alert.simulated,
        None if alert.context is None else orjson.dumps(alert.context.to_json_dict()).decode(),
        None if alert.level is None else alert.level.multiple,
        None if alert.level is None else alert.level.min_volume,
        alert.projected_volume,
    )
    return alert_id


async def mark_published(conn: Executor, ids: Sequence[int]) -> None:
    await conn.execute(MARK_PUBLISHED, list(ids))


async def lock_unpublished(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """Unpublished rows in id order, row-locked (call inside a transaction); `from_row` makes
    each an Alert (the publisher does, one by one, so one unreadable row stops nothing)."""
    rows: list[asyncpg.Record] = await conn.fetch(LOCK_UNPUBLISHED, limit)
    return rows


async def dead_letter(conn: Executor, alert_id: int, error: str) -> None:
    await conn.execute(DEAD_LETTER, alert_id, error)


async def lock_unpublished_by_id(conn: Conn, alert_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(LOCK_UNPUBLISHED_BY_ID, alert_id)
    return row


async def count_unpublished(conn: Executor) -> int:
    count: int = await conn.fetchval(COUNT_UNPUBLISHED)
    return count


async def fired_since(
    conn: Executor, since: datetime
) -> list[tuple[str, datetime, AlertType, datetime, float, float, float, bool, float]]:
    """`(symbol, hour, type, detected_at, previous_volume, ratio, current_volume, crossing,
    projected_volume)` of alerts (crossings and EARLYs too) for hours >= `since`:
    `SpikeDetector.restore` (the SPIKE's denominator is what its updates carry; the figures say
    which grades the hour was recorded at, an EARLY's projection which multiple it projected)."""
    rows = await conn.fetch(FIRED_SINCE, since)
    return [
        (
            r["symbol"],
            r["hour_ts"],
            AlertType(r["alert_type"]),
            r["detected_at"],
            r["previous_volume"],
            r["volume_ratio"],
            r["current_volume"],
            r["crossing"],
            r["projected_volume"],
        )
        for r in rows
    ]


async def get_alert(conn: Executor, alert_id: int) -> Alert | None:
    row = await conn.fetchrow(GET, alert_id)
    return None if row is None else from_row(row)


async def find_id(conn: Executor, symbol: str, hour: datetime, alert_type: str) -> int | None:
    """The id of the (symbol, hour, type) row, if there is one."""
    alert_id: int | None = await conn.fetchval(FIND_ID, symbol, hour, alert_type)
    return alert_id


async def latest_alerts(
    conn: Executor, limit: int, *, symbol: str | None = None, before_id: int | None = None
) -> list[Alert]:
    """Newest first; `symbol` narrows to one symbol, `before_id` pages back."""
    if symbol is None:
        rows = await conn.fetch(LATEST, limit, before_id)
    else:
        rows = await conn.fetch(LATEST_FOR_SYMBOL, symbol, limit, before_id)
    return [from_row(row) for row in rows]


async def fanout_due(conn: Executor, *, after_id: int, limit: int) -> list[int]:
    """Ids of alerts without a fan-out (and not dead-lettered), in id order, after `after_id`."""
    return [row["id"] for row in await conn.fetch(FANOUT_DUE, after_id, limit)]


async def mark_fanned_out(conn: Executor, alert_id: int, when: datetime) -> None:
    """Record the fan-out; call in the transaction that writes the alert's last delivery rows."""
    await conn.execute(MARK_FANNED_OUT, alert_id, when)


async def record_fanout_failure(
    conn: Executor, alert_id: int, error: str, *, max_attempts: int, when: datetime
) -> tuple[int, bool]:
    """Count one failed fan-out attempt; after `max_attempts` the alert is dead-lettered.
    Returns `(attempts, dead)`; `(0, False)` when the alert is gone or already fanned out."""
    row = await conn.fetchrow(RECORD_FANOUT_FAILURE, alert_id, error[:1000], max_attempts, when)
    if row is None:
        return 0, False
    return int(row["fanout_attempts"]), bool(row["dead"])


async def expire_fanout(
    conn: Executor, *, detected_before: datetime, when: datetime
) -> list[tuple[int, str, AlertType, datetime]]:
    """Dead-letter alerts still without a fan-out that were detected before `detected_before`
    (too old to be sent to anyone); returns `(id, symbol, type, detected_at)` of each."""
    rows = await conn.fetch(EXPIRE_FANOUT, detected_before, when)
    return [(r["id"], r["symbol"], AlertType(r["alert_type"]), r["detected_at"]) for r in rows]
