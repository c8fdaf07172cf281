"""Recent alerts for `/alerts`: the last N a tier may see, newest first."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from db.alerts import PUBLIC

# `detected_at <= $1`: a delayed tier does not see in history what its push has not shown yet.
# With each alert's outcome so far (`alert_outcomes`; NULL horizon: none computed yet).
RECENT = f"""
SELECT a.id, a.symbol, a.asset, a.alert_type, a.detected_at, a.current_volume, a.volume_ratio, a.price,
       a.simulated, a.previous_volume, a.projected_volume,
       o.horizon_minutes, o.change_15m, o.change_1h, o.change_4h
FROM alerts a
LEFT JOIN alert_outcomes o ON o.alert_id = a.id
WHERE a.detected_at <= $1 AND a.alert_type = ANY($3::text[]) AND a.{PUBLIC}
ORDER BY a.detected_at DESC, a.id DESC
LIMIT $2
"""


async def recent(
    conn: asyncpg.Pool | asyncpg.Connection, *, visible_until: datetime, limit: int, types: list[str]
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(RECENT, visible_until, limit, types)
    return rows
