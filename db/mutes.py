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
