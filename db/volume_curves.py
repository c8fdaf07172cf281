"""The usual intraday volume curves (`volume_curves`, migration 110; `core.pace`): the per-minute
sums they are pooled from, the upsert, and the readers.

`MINUTE_SUMS` reads, for each symbol, the same UTC hour of the last days (one range per day, by
the candles' primary key (symbol, open_time)), keeps the hours whose 60 minutes are all stored
and sums each minute's quote volume over them; `core.pace.curve_from_sums` makes the curve."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.pace import Curve

Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

# $1 symbols, $2 the first hour's start, $3 how many days (one hour each, a day apart).
MINUTE_SUMS = """
WITH hours AS (
    SELECT $2::timestamptz + make_interval(days => d) AS start FROM generate_series(0, $3::int - 1) AS d
),
m AS (
    SELECT c.symbol, h.start, c.open_time, c.quote_volume
    FROM unnest($1::text[]) AS s(symbol)
    CROSS JOIN hours h
    JOIN candles_1m c
      ON c.symbol = s.symbol AND c.open_time >= h.start AND c.open_time < h.start + interval '1 hour'
),
complete AS (
    SELECT symbol, start FROM m GROUP BY symbol, start HAVING count(*) = 60
)
SELECT m.symbol,
       (extract(epoch FROM m.open_time - m.start) / 60)::int AS minute,
       sum(m.quote_volume) AS quote_volume,
       count(*) AS hours
FROM m JOIN complete USING (symbol, start)
GROUP BY 1, 2
"""

UPSERT = """
INSERT INTO volume_curves (symbol, hour_of_day, shares, days, computed_at)
SELECT s, $2, sh::float8[], d, $5
FROM unnest($1::text[], $3::text[], $4::int[]) AS t(s, sh, d)
ON CONFLICT (symbol, hour_of_day) DO UPDATE
SET shares = EXCLUDED.shares, days = EXCLUDED.days, computed_at = EXCLUDED.computed_at
"""

# An hour of the day is fresh when some of the symbols' curves for it were computed since $2
# (a symbol listed since gets its curve at the hour's next daily refresh).
STALE_HOURS = """
SELECT h FROM generate_series(0, 23) AS h
WHERE NOT EXISTS (
    SELECT 1 FROM volume_curves v
    WHERE v.hour_of_day = h AND v.symbol = ANY($1::text[]) AND v.computed_at > $2
)
"""

ALL = "SELECT symbol, hour_of_day, shares, days FROM volume_curves WHERE symbol = ANY($1::text[])"


async def minute_sums(
    conn: Executor, symbols: Sequence[str], first_hour: datetime, days: int
) -> dict[str, tuple[list[float], int]]:
    """Per symbol: the quote volume of each minute summed over the complete hours among `days`
    hours a day apart from `first_hour`, and how many such hours there were."""
    out: dict[str, tuple[list[float], int]] = {}
    for row in await conn.fetch(MINUTE_SUMS, list(symbols), first_hour, days):
        sums, _ = out.setdefault(row["symbol"], ([0.0] * 60, 0))
        sums[row["minute"]] = row["quote_volume"]
        out[row["symbol"]] = (sums, row["hours"])
    return out


async def store(conn: Executor, hour_of_day: int, curves: dict[str, Curve], when: datetime) -> None:
    symbols = list(curves)
    await conn.execute(
        UPSERT,
        symbols,
        hour_of_day,
        ["{" + ",".join(repr(s) for s in curves[s].shares) + "}" for s in symbols],
        [curves[s].days for s in symbols],
        when,
    )


async def stale_hours(conn: Executor, symbols: Sequence[str], now: datetime, max_age: timedelta) -> list[int]:
    """Hours of the day none of `symbols` has a curve computed within `max_age` for."""
    return [row["h"] for row in await conn.fetch(STALE_HOURS, list(symbols), now - max_age)]


async def load(conn: Executor, symbols: Sequence[str]) -> list[tuple[str, int, Curve]]:
    return [
        (row["symbol"], row["hour_of_day"], Curve(tuple(row["shares"]), row["days"]))
        for row in await conn.fetch(ALL, list(symbols))
    ]
