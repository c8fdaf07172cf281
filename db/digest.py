"""A chat's burst digest (core.digest) in the database: what it lists (the chat's SPIKE rows sent,
or of unknown outcome, since the digest's window start, up to and including the row being sent
now), and the mark a row gets just before its digest is sent or edited, so that a row killed in
flight is known to have been a digest's (`unknown` with `digest_since`) and its burst never starts
a second digest."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.digest import BurstSpike
from db.alert_context import context_from_db

Conn = asyncpg.Connection | PoolConnectionProxy

# Through the chat's SPIKE rows by symbol-hour (deliveries_chat_spikes_idx): a SPIKE detected
# at or after `since` belongs to an hour that began less than an hour before it.
BURST_SPIKES = """
SELECT a.symbol, a.asset, a.volume_ratio, a.current_volume, a.detected_at, a.context, a.simulated
FROM deliveries d
JOIN alerts a ON a.id = d.alert_id
WHERE d.chat_id = $1
  AND d.spike_hour > $2::timestamptz - interval '1 hour' AND d.spike_hour <= $3
  AND (d.status IN ('sent', 'unknown') OR d.id = $4) AND NOT d.capped
  AND a.detected_at >= $2 AND (a.detected_at, d.id) <= ($5, $4)
"""

MARK = "UPDATE deliveries SET digest_since = $2 WHERE id = $1 AND status = 'sending'"


async def burst_spikes(
    conn: Conn, chat_id: int, *, since: datetime, delivery_id: int, hour: datetime, detected_at: datetime
) -> list[BurstSpike]:
    """The chat's SPIKEs sent from `since` on, and the row `delivery_id` (detected at `detected_at`,
    of the hour `hour`) being sent now: what its digest lists."""
    rows = await conn.fetch(BURST_SPIKES, chat_id, since, hour, delivery_id, detected_at)
    spikes = []
    for row in rows:
        context = context_from_db(row["context"])
        spikes.append(
            BurstSpike(
                symbol=row["symbol"],
                asset=row["asset"],
                ratio=row["volume_ratio"],
                volume=row["current_volume"],
                detected_at=row["detected_at"],
                rank_top_percent=context.rank_top_percent if context is not None else None,
                simulated=row["simulated"],
            )
        )
    return spikes


async def mark(conn: Conn, delivery_id: int, since: datetime) -> None:
    """The row (in flight) goes out in the digest listing from `since`: said before the request."""
    await conn.execute(MARK, delivery_id, since)
