"""Daily partitions of candles_1m: create ahead, drop behind (run by a scheduled job)."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

ENSURE = "SELECT ensure_candle_partitions($1::date, $2::date)"
DROP_BEFORE = "SELECT drop_candle_partitions_before($1::date)"
LIST = """
SELECT c.relname
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'candles_1m'
ORDER BY c.relname
"""


async def ensure_partitions(conn: asyncpg.Connection | asyncpg.Pool, first: date, last: date) -> int:
    created: int = await conn.fetchval(ENSURE, first, last)
    return created


async def drop_partitions_before(conn: asyncpg.Connection | asyncpg.Pool, cutoff: date) -> int:
    dropped: int = await conn.fetchval(DROP_BEFORE, cutoff)
    return dropped


async def list_partitions(conn: asyncpg.Connection | asyncpg.Pool) -> list[str]:
    return [row["relname"] for row in await conn.fetch(LIST)]


async def maintain(
    conn: asyncpg.Connection | asyncpg.Pool, today: date, retention_days: int, back_days: int = 2
) -> tuple[int, int]:
    """The retention job: partitions for the last `back_days` days up to tomorrow exist,
    those older than `retention_days` go. Writers create older days on demand."""
    cutoff = today - timedelta(days=retention_days)
    first = max(cutoff, today - timedelta(days=back_days))
    created = await ensure_partitions(conn, first, today + timedelta(days=1))
    dropped = await drop_partitions_before(conn, cutoff)
    return created, dropped
