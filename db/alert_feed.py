"""The alert feed as the Mini App and the JSON API read it: a tier's window of the history,
filtered by type and symbol, and the alert markers of a chart."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from core.alerts import Alert
from db.alerts import COLUMNS, PUBLIC, Executor, from_row

# `detected_at <= $1`: a delayed tier does not see what its push has not shown yet.
# Public alerts only: a crossing of own thresholds is its users' push, not the feed.
FEED = f"""
SELECT {COLUMNS} FROM alerts
WHERE detected_at <= $1 AND publish_failed_at IS NULL AND {PUBLIC}
  AND alert_type = ANY($3::text[])
  AND ($4::text IS NULL OR symbol = $4)
  AND ($5::text IS NULL OR strpos(symbol, upper($5)) > 0)
ORDER BY detected_at DESC, id DESC
LIMIT $2
"""

MARKERS = f"""
SELECT detected_at, alert_type, volume_ratio FROM alerts
WHERE symbol = $1 AND detected_at >= $2 AND detected_at < $3 AND detected_at <= $4
  AND publish_failed_at IS NULL AND {PUBLIC}
  AND alert_type = ANY($5::text[])
ORDER BY detected_at
"""

# The stored 1-minute closes of several (symbol, hour) pairs at once: a page of alert cards'
# sparklines in one statement (each pair reads its hour through the partition's primary key).
HOUR_CLOSES = """
SELECT k.symbol, k.hour,
       coalesce(array_agg((extract(epoch FROM c.open_time - k.hour) / 60)::int ORDER BY c.open_time)
                FILTER (WHERE c.open_time IS NOT NULL), '{}') AS minutes,
       coalesce(array_agg(c.close ORDER BY c.open_time)
                FILTER (WHERE c.open_time IS NOT NULL), '{}') AS closes
FROM unnest($1::text[], $2::timestamptz[]) AS k(symbol, hour)
LEFT JOIN candles_1m c
  ON c.symbol = k.symbol AND c.open_time >= k.hour AND c.open_time < k.hour + interval '1 hour'
GROUP BY k.symbol, k.hour
"""


async def feed(
    conn: Executor,
    *,
    visible_until: datetime,
    limit: int,
    types: Sequence[str],
    symbol: str | None = None,
    search: str | None = None,
) -> list[Alert]:
    """Newest first; `search` keeps the symbols containing it, in any case."""
    rows = await conn.fetch(FEED, visible_until, limit, list(types), symbol, search)
    return [from_row(row) for row in rows]


async def markers(
    conn: Executor,
    symbol: str,
    start: datetime,
    end: datetime,
    *,
    visible_until: datetime,
    types: Sequence[str],
) -> list[asyncpg.Record]:
    """`(detected_at, alert_type, volume_ratio)` of the symbol's alerts in [start, end), oldest first."""
    rows: list[asyncpg.Record] = await conn.fetch(MARKERS, symbol, start, end, visible_until, list(types))
    return rows


async def hour_closes(
    conn: Executor, hours: Sequence[tuple[str, datetime]]
) -> dict[tuple[str, datetime], tuple[list[int], list[float]]]:
    """For each distinct (symbol, hour start): its stored minutes (0-59) and their closes, oldest
    first; a pair with no stored minute maps to two empty lists. One statement for all pairs."""
    pairs = list(dict.fromkeys(hours))
    if not pairs:
        return {}
    rows = await conn.fetch(HOUR_CLOSES, [p[0] for p in pairs], [p[1] for p in pairs])
    return {(row["symbol"], row["hour"]): (list(row["minutes"]), list(row["closes"])) for row in rows}
