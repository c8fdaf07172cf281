"""The stored inputs of an alert's context (core/alert_context.py): one query per alert.

For one symbol it reads the same UTC hour of the last 30 days in `candles_1h` (the rank), the
23 closed hours before this one (24 h turnover), the minute 24 h before the alert in
`candles_1m` (24 h price move) and the last 30 days of `mark_snapshots` (funding percentile).
Every part is a primary-key range of that symbol: a few milliseconds on a month of data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from core.alert_context import FUNDING_DAYS, RANK_DAYS, AlertContext

Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

BASELINE = """
WITH same_hour AS (
    SELECT count(*) AS n, count(*) FILTER (WHERE quote_volume >= $3) AS at_or_above
    FROM candles_1h
    WHERE symbol = $1 AND open_time = ANY($2::timestamptz[])
), day AS (
    SELECT count(*) AS n, sum(quote_volume) AS turnover
    FROM candles_1h
    WHERE symbol = $1 AND open_time >= $4 AND open_time < $5
), funding AS (
    SELECT count(*) AS n, count(*) FILTER (WHERE funding_rate <= $8) AS at_or_below, min(ts) AS since
    FROM mark_snapshots
    WHERE symbol = $1 AND ts >= $6 AND ts < $7 AND funding_rate IS NOT NULL
)
SELECT same_hour.n AS rank_samples, same_hour.at_or_above,
       day.n AS day_hours, day.turnover,
       funding.n AS funding_samples, funding.at_or_below, funding.since,
       (SELECT close FROM candles_1m WHERE symbol = $1 AND open_time = $9) AS close_24h_ago
FROM same_hour, day, funding
"""

# JSON goes in as text (`::text::jsonb`): the same on pool connections, whose jsonb codec would
# encode a str as a JSON string, and on the publisher's plain connection.
MERGE = "UPDATE alerts SET context = coalesce(context, '{}'::jsonb) || $2::text::jsonb WHERE id = $1"

GET = "SELECT context FROM alerts WHERE id = $1"


@dataclass(frozen=True, slots=True)
class Baseline:
    rank_samples: int  # same-hour candles_1h rows of the last 30 days
    rank_at_or_above: int  # of those, with a quote volume >= this hour's so far
    day_hours: int  # closed hours stored of the 23 before this one
    day_turnover: float | None  # their quote volume
    funding_samples: int
    funding_at_or_below: int
    funding_since: datetime | None  # the oldest snapshot of the 30 days
    close_24h_ago: float | None  # close of the minute 24 h before the alert's minute


async def baseline(
    conn: Executor, symbol: str, hour: datetime, detected_at: datetime, volume: float, funding: float | None
) -> Baseline:
    same_hours = [hour - timedelta(days=d) for d in range(1, RANK_DAYS + 1)]
    minute = detected_at.replace(second=0, microsecond=0)
    row = await conn.fetchrow(
        BASELINE,
        symbol,
        same_hours,
        volume,
        hour - timedelta(hours=23),
        hour,
        detected_at - timedelta(days=FUNDING_DAYS),
        detected_at,
        funding,
        minute - timedelta(days=1),
    )
    assert row is not None
    return Baseline(
        rank_samples=row["rank_samples"],
        rank_at_or_above=row["at_or_above"],
        day_hours=row["day_hours"],
        day_turnover=row["turnover"],
        funding_samples=row["funding_samples"],
        funding_at_or_below=row["at_or_below"],
        funding_since=row["since"],
        close_24h_ago=row["close_24h_ago"],
    )


async def merge_context(conn: Executor, alert_id: int, part: dict[str, float | None]) -> None:
    """Lay `part` (JSON names of core.alert_context) over the stored context of the alert."""
    await conn.execute(MERGE, alert_id, orjson.dumps(part).decode())


async def stored_context(conn: Executor, alert_id: int) -> AlertContext | None:
    raw = await conn.fetchval(GET, alert_id)
    return context_from_db(raw)


def context_from_db(raw: object) -> AlertContext | None:
    """The jsonb column as asyncpg returns it (text) into an AlertContext."""
    if raw is None:
        return None
    data = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return AlertContext.from_json_dict(data) if isinstance(data, dict) else None
