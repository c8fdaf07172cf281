"""Recent alerts for `/alerts`: the last N a tier may see, newest first."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from db.alerts import PUBLIC

# `detected_at <= $1`: a delayed tier does not see in history what its push has not shown yet.
RECENT = f"""
SELECT id, symbol, asset, alert_type, detected_at, current_volume, volume_ratio, price, simulated
FROM alerts
WHERE detected_at <= $1 AND alert_type = ANY($3::text[]) AND {PUBLIC}
ORDER BY detected_at DESC, id DESC
LIMIT $2
"""


async def recent(
    conn: asyncpg.Pool | asyncpg.Connection, *, visible_until: datetime, limit: int, types: list[str]
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(RECENT, visible_until, limit, types)
    return rows
