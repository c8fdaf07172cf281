"""Where a symbol's stored 1m candles end: the newest minute before a time (the UDF's
`nextTime` when a requested range is empty but older bars exist)."""

from __future__ import annotations

from datetime import datetime

from db.candles import Executor

NEWEST_BEFORE = "SELECT max(open_time) FROM candles_1m WHERE symbol = $1 AND open_time < $2"


async def newest_before(conn: Executor, symbol: str, before: datetime) -> datetime | None:
    newest: datetime | None = await conn.fetchval(NEWEST_BEFORE, symbol, before)
    return newest
