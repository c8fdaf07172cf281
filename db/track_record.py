"""The public track record: every public SPIKE (and, as a group of its own, every public EARLY
warning) detected in a window with what its price did after it
(`alert_outcomes`), grouped by one bucket each, with the count, the quartiles and median of each
horizon's move and the share of alerts that moved more than 2 % either way.

One query per grouping, each a single pass over the window's SPIKEs (`alerts_spike_detected_idx`)
joined to their outcomes by primary key. An alert whose outcome is not computed yet counts in
`alerts` but not in a horizon's `known`; quartiles and shares are over the known moves only
(ordered-set aggregates and `avg` skip NULLs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

BIG_MOVE = 2.0  # percent, either way

# Bucket expressions over `a` (alerts) and `o` (alert_outcomes): an ordinal, in display order.
# Bounds: ratio 4×/6×/10×, taker-buy share 40/50/60 %, the hour's quote volume $10M/$50M/$250M.
RATIO_BUCKET = "width_bucket(a.volume_ratio, ARRAY[4, 6, 10]::float8[])"
TAKER_BUCKET = "coalesce(width_bucket(o.taker_share, ARRAY[0.4, 0.5, 0.6]::float8[]), -1)"  # -1: unknown
LIQUIDITY_BUCKET = "width_bucket(a.current_volume, ARRAY[1e7, 5e7, 2.5e8]::float8[])"
# Rank (the alert's context, `rankTopPercent`: "top x %" for this hour of the day): top 1 %, 5 %,
# 20 %, the rest; -1: unknown (fewer than 30 days of the hour, or an alert without context).
RANK_BUCKET = """CASE
    WHEN (a.context ->> 'rankTopPercent') IS NULL THEN -1
    WHEN (a.context ->> 'rankTopPercent')::float8 <= 1 THEN 0
    WHEN (a.context ->> 'rankTopPercent')::float8 <= 5 THEN 1
    WHEN (a.context ->> 'rankTopPercent')::float8 <= 20 THEN 2
    ELSE 3 END"""


def _horizon(column: str) -> str:
    return f"""
       count(o.{column}) AS {column}_known,
       percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY o.{column}) AS {column}_quartiles,
       avg((abs(o.{column}) > {BIG_MOVE})::int) AS {column}_big"""


def _grouped(bucket: str, alert_type: str = "SPIKE") -> str:
    return f"""
SELECT {bucket} AS bucket,
       count(*) AS alerts,{_horizon("change_15m")},{_horizon("change_1h")},{_horizon("change_4h")}
FROM alerts a
LEFT JOIN alert_outcomes o ON o.alert_id = a.id
WHERE a.alert_type = '{alert_type}' AND a.level_multiple IS NULL
  AND a.detected_at >= $1 AND a.detected_at <= $2
GROUP BY 1
ORDER BY 1
"""


RECORD_ALL = _grouped("0")
RECORD_BY_RATIO = _grouped(RATIO_BUCKET)
RECORD_BY_TAKER = _grouped(TAKER_BUCKET)
RECORD_BY_LIQUIDITY = _grouped(LIQUIDITY_BUCKET)
RECORD_BY_RANK = _grouped(RANK_BUCKET)
RECORD_EARLY = _grouped("0", "EARLY")  # the early warnings, all in one bucket

GROUPINGS = {
    "all": RECORD_ALL,
    "ratio": RECORD_BY_RATIO,
    "rank": RECORD_BY_RANK,
    "taker": RECORD_BY_TAKER,
    "liquidity": RECORD_BY_LIQUIDITY,
    "early": RECORD_EARLY,
}
HORIZON_COLUMNS = {15: "change_15m", 60: "change_1h", 240: "change_4h"}


@dataclass(frozen=True, slots=True)
class HorizonStats:
    known: int
    p25: float | None
    median: float | None
    p75: float | None
    big_share: float | None  # share of the known moves beyond BIG_MOVE either way, 0..1


@dataclass(frozen=True, slots=True)
class BucketStats:
    bucket: int
    alerts: int
    horizons: dict[int, HorizonStats]  # 15, 60, 240 minutes


def _stats(row: asyncpg.Record) -> BucketStats:
    horizons = {}
    for minutes, column in HORIZON_COLUMNS.items():
        quartiles = row[f"{column}_quartiles"] or [None, None, None]
        big = row[f"{column}_big"]
        horizons[minutes] = HorizonStats(
            row[f"{column}_known"],
            quartiles[0],
            quartiles[1],
            quartiles[2],
            None if big is None else float(big),
        )
    return BucketStats(row["bucket"], row["alerts"], horizons)


async def grouped(conn: Executor, grouping: str, start: datetime, end: datetime) -> list[BucketStats]:
    """The SPIKEs (EARLYs for "early") detected in [start, end] grouped by `grouping` (a key of
    GROUPINGS)."""
    return [_stats(row) for row in await conn.fetch(GROUPINGS[grouping], start, end)]
