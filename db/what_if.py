"""What-if for a user's own thresholds: how many SPIKEs a multiple M and a minimum volume V would
have given over a past window, and the median move after 1 h of those alerts.

An hour fires for (M, V) exactly when its final quote volume stands at or above both V and M× the
previous hour's (the hour's volume only grows, so it crossed both at some moment), so the count is
read from the closed hours of `candles_1h` joined to the hour before; the forming hour is left
out. The move after 1 h is the stored outcome of that symbol-hour's SPIKE (`alert_outcomes`): for
thresholds at or above the default every such hour had one (its own alert may come later in the
hour, so the move is the default alert's); below the default, hours without a SPIKE have no
outcome and `known` says how many had one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

WHAT_IF = """
SELECT count(*) AS hours,
       count(o.change_1h) AS known,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY o.change_1h) AS median_1h,
       (SELECT min(open_time) FROM candles_1h WHERE open_time >= $1 AND open_time < $2) AS first_hour
FROM candles_1h h
JOIN candles_1h p ON p.symbol = h.symbol AND p.open_time = h.open_time - interval '1 hour'
LEFT JOIN alerts a ON a.symbol = h.symbol AND a.hour_ts = h.open_time AND a.alert_type = 'SPIKE'
LEFT JOIN alert_outcomes o ON o.alert_id = a.id
WHERE h.open_time >= $1 AND h.open_time < $2
  AND h.quote_volume >= $4 AND p.quote_volume > 0 AND h.quote_volume >= $3 * p.quote_volume
"""


@dataclass(frozen=True, slots=True)
class WhatIf:
    hours: int  # symbol-hours that would have fired
    known: int  # of them, with a known move after 1 h
    median_1h: float | None  # percent
    first_hour: datetime | None  # the oldest stored hour of the window (None: no candles)


async def what_if(
    conn: Executor, start: datetime, end: datetime, multiple: float, min_volume: float
) -> WhatIf:
    """Over the closed hours in [start, end) (`end` the forming hour's start)."""
    row = await conn.fetchrow(WHAT_IF, start, end, multiple, min_volume)
    assert row is not None
    return WhatIf(row["hours"], row["known"], row["median_1h"], row["first_hour"])
