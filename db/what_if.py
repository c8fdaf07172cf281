"""What-if for a user's own thresholds: how many SPIKEs a multiple M and a minimum volume V would
have given over a past window, and the median move after 1 h of those alerts.

An hour fires for (M, V) exactly when its final quote volume stands at or above both V and M× the
previous hour's (the hour's volume only grows, so it crossed both at some moment); the forming
hour is left out. Own thresholds are never below the default (the presets of the bot and the
Mini App start at it), so such an hour also fired the default SPIKE: the count reads the
window's SPIKE rows, each with its hour's final volume from `candles_1h` and the rule's own
denominator (the alert's previous volume) — a few thousand rows, not every hour of every symbol
(`bench/outcomes_queries.py`).

The move after 1 h is the stored outcome of that SPIKE (`alert_outcomes`); the user's own alert
may come later in the hour than the default's, so it is the default alert's move. `known` says
how many of the hours have it (an outcome is unknown when candles were missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.what_if import covered_days, per_day, window

Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

# The window's SPIKEs (`alerts_spike_detected_idx`) that the thresholds would have kept.
FROM_SPIKES = """
SELECT count(*) AS hours,
       count(o.change_1h) AS known,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY o.change_1h) AS median_1h
FROM alerts a
JOIN candles_1h h ON h.symbol = a.symbol AND h.open_time = a.hour_ts
LEFT JOIN alert_outcomes o ON o.alert_id = a.id
WHERE a.alert_type = 'SPIKE' AND a.detected_at >= $1 AND a.detected_at < $2
  AND h.quote_volume >= $4 AND a.previous_volume > 0 AND h.quote_volume >= $3 * a.previous_volume
"""

FIRST_HOUR = "SELECT min(open_time) FROM candles_1h WHERE open_time >= $1 AND open_time < $2"


@dataclass(frozen=True, slots=True)
class WhatIf:
    hours: int  # symbol-hours that would have fired
    known: int  # of them, with a known move after 1 h
    median_1h: float | None  # percent
    first_hour: datetime | None  # the oldest stored hour of the window (None: no candles)


async def what_if(
    conn: Executor,
    start: datetime,
    end: datetime,
    multiple: float,
    min_volume: float,
    *,
    default_multiple: float,
    default_volume: float,
) -> WhatIf:
    """Over the closed hours in [start, end) (`end` the forming hour's start), for thresholds at or
    above the defaults (ValueError below them)."""
    if multiple < default_multiple or min_volume < default_volume:
        raise ValueError("own thresholds are never below the default")
    row = await conn.fetchrow(FROM_SPIKES, start, end, multiple, min_volume)
    assert row is not None
    first_hour: datetime | None = await conn.fetchval(FIRST_HOUR, start, end)
    return WhatIf(row["hours"], row["known"], row["median_1h"], first_hour)


async def estimate(
    pool: asyncpg.Pool, now: datetime, multiple: float, min_volume: float, defaults: tuple[float, float]
) -> tuple[int, float, float | None, float | None, int]:
    """`(alerts, days, alerts a day, median move after 1 h, alerts with a known move)`;
    `defaults`: the service's spike multiple and minimum volume."""
    start, end = window(now)
    found = await what_if(
        pool, start, end, multiple, min_volume, default_multiple=defaults[0], default_volume=defaults[1]
    )
    days = covered_days(start, end, found.first_hour)
    return found.hours, days, per_day(found.hours, days), found.median_1h, found.known
