"""Mutes: a user's "no alerts for this symbol until then"."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

# Muting again extends the mute from now; it never shortens a longer one.
MUTE = """
INSERT INTO mutes (user_id, symbol, until) VALUES ($1, $2, $3)
ON CONFLICT (user_id, symbol) DO UPDATE SET until = greatest(mutes.until, EXCLUDED.until)
"""


async def mute(conn: Executor, user_id: int, symbol: str, until: datetime) -> None:
    await conn.execute(MUTE, user_id, symbol, until)


ACTIVE = """
SELECT m.symbol, coalesce(s.base_asset, m.symbol) AS asset, m.until
FROM mutes m LEFT JOIN symbols s ON s.symbol = m.symbol
WHERE m.user_id = $1 AND m.until > $2
ORDER BY m.symbol
"""

UNMUTE = "DELETE FROM mutes WHERE user_id = $1 AND symbol = $2 AND until > $3 RETURNING symbol"

IS_MUTED = "SELECT EXISTS (SELECT 1 FROM mutes WHERE user_id = $1 AND symbol = $2 AND until > $3)"


async def active(conn: Executor, user_id: int, now: datetime) -> list[asyncpg.Record]:
    """The user's mutes still running at `now`: symbol, asset and until, by symbol."""
    return list(await conn.fetch(ACTIVE, user_id, now))


async def unmute(conn: Executor, user_id: int, symbol: str, now: datetime) -> bool:
    """Lift a running mute; False when there was none."""
    return await conn.fetchval(UNMUTE, user_id, symbol, now) is not None


async def is_muted(conn: Executor, user_id: int, symbol: str, now: datetime) -> bool:
    return bool(await conn.fetchval(IS_MUTED, user_id, symbol, now))
