"""Alert rows: insert once per (symbol, hour, type), publish bookkeeping, and readers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from volspike.alerts import Alert, AlertType

Conn = asyncpg.Connection | PoolConnectionProxy
Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

COLUMNS = (
    "id, symbol, asset, alert_type, hour_ts, detected_at, current_volume, previous_volume, "
    "volume_ratio, price, funding_rate"
)

INSERT = """
INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume,
                    previous_volume, volume_ratio, price, funding_rate)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (symbol, hour_ts, alert_type) DO NOTHING
RETURNING id
"""

MARK_PUBLISHED = """
UPDATE alerts SET published_at = now() WHERE id = ANY($1::bigint[]) AND published_at IS NULL
"""

# Rows to publish, locked so that two publishers never take the same row at the same time.
LOCK_UNPUBLISHED = f"""
SELECT {COLUMNS} FROM alerts
WHERE published_at IS NULL
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED
"""

LOCK_UNPUBLISHED_BY_ID = f"""
SELECT {COLUMNS} FROM alerts
WHERE id = $1 AND published_at IS NULL
FOR UPDATE SKIP LOCKED
"""

COUNT_UNPUBLISHED = "SELECT count(*) FROM alerts WHERE published_at IS NULL"

FIRED_SINCE = """
SELECT symbol, hour_ts, alert_type, detected_at FROM alerts
WHERE hour_ts >= $1
ORDER BY id
"""

GET = f"SELECT {COLUMNS} FROM alerts WHERE id = $1"

FIND_ID = "SELECT id FROM alerts WHERE symbol = $1 AND hour_ts = $2 AND alert_type = $3"

LATEST = f"""
SELECT {COLUMNS} FROM alerts
WHERE ($2::bigint IS NULL OR id < $2)
ORDER BY detected_at DESC, id DESC
LIMIT $1
"""

LATEST_FOR_SYMBOL = f"""
SELECT {COLUMNS} FROM alerts
WHERE symbol = $1 AND ($3::bigint IS NULL OR id < $3)
ORDER BY detected_at DESC, id DESC
LIMIT $2
"""


def from_row(row: asyncpg.Record) -> Alert:
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
    )


async def insert_alert(conn: Executor, alert: Alert) -> int | None:
    """Insert the alert; its id, or None when (symbol, hour, type) already has a row."""
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
    )
    return alert_id


async def mark_published(conn: Executor, ids: Sequence[int]) -> None:
    await conn.execute(MARK_PUBLISHED, list(ids))


async def lock_unpublished(conn: Conn, limit: int) -> list[Alert]:
    """Unpublished alerts in id order, row-locked (call inside a transaction)."""
    return [from_row(row) for row in await conn.fetch(LOCK_UNPUBLISHED, limit)]


async def lock_unpublished_by_id(conn: Conn, alert_id: int) -> Alert | None:
    row = await conn.fetchrow(LOCK_UNPUBLISHED_BY_ID, alert_id)
    return None if row is None else from_row(row)


async def count_unpublished(conn: Executor) -> int:
    count: int = await conn.fetchval(COUNT_UNPUBLISHED)
    return count


async def fired_since(conn: Executor, since: datetime) -> list[tuple[str, datetime, AlertType, datetime]]:
    """`(symbol, hour, type, detected_at)` of alerts for hours >= `since`: `SpikeDetector.restore`."""
    rows = await conn.fetch(FIRED_SINCE, since)
    return [(r["symbol"], r["hour_ts"], AlertType(r["alert_type"]), r["detected_at"]) for r in rows]


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
