"""Mark price and funding history (`mark_snapshots`): one row per symbol every few minutes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy
Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool


@dataclass(frozen=True, slots=True)
class MarkSnapshot:
    symbol: str
    ts: datetime
    mark_price: float
    index_price: float | None
    funding_rate: float | None
    next_funding_time: datetime | None


# A snapshot replayed after a restart (same symbol and time) is left as first written.
INSERT = """
INSERT INTO mark_snapshots (symbol, ts, mark_price, index_price, funding_rate, next_funding_time)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[],
                     $6::timestamptz[])
ON CONFLICT (symbol, ts) DO NOTHING
"""

HISTORY = """
SELECT symbol, ts, mark_price, index_price, funding_rate, next_funding_time
FROM mark_snapshots
WHERE symbol = $1 AND ts >= $2 AND ts < $3
ORDER BY ts
"""


async def insert_snapshots(conn: Executor, rows: Sequence[MarkSnapshot]) -> int:
    """Store `rows`; how many were new."""
    if not rows:
        return 0
    status: str = await conn.execute(
        INSERT,
        [r.symbol for r in rows],
        [r.ts for r in rows],
        [r.mark_price for r in rows],
        [r.index_price for r in rows],
        [r.funding_rate for r in rows],
        [r.next_funding_time for r in rows],
    )
    return int(status.rsplit(" ", 1)[-1])


async def history(conn: Executor, symbol: str, start: datetime, end: datetime) -> list[MarkSnapshot]:
    """Snapshots of `symbol` with start <= ts < end, oldest first."""
    rows = await conn.fetch(HISTORY, symbol, start, end)
    return [MarkSnapshot(*row) for row in rows]
