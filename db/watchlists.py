"""Watchlists and the symbol universe users pick from (active rows of `symbols`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

ACTIVE_SYMBOLS = "SELECT symbol, base_asset FROM symbols WHERE active"

LIST = "SELECT symbol FROM watchlists WHERE user_id = $1 ORDER BY symbol"

COUNT = "SELECT count(*) FROM watchlists WHERE user_id = $1"

# Serializes concurrent /watch of one user so the size limit cannot be overshot.
LOCK_USER = "SELECT id FROM users WHERE id = $1 FOR UPDATE"

ADD = """
INSERT INTO watchlists (user_id, symbol)
SELECT $1, s FROM unnest($2::text[]) AS s
ON CONFLICT DO NOTHING
RETURNING symbol
"""

REMOVE = "DELETE FROM watchlists WHERE user_id = $1 AND symbol = ANY($2::text[]) RETURNING symbol"

CLEAR = "DELETE FROM watchlists WHERE user_id = $1 RETURNING symbol"


@dataclass(frozen=True, slots=True)
class AddResult:
    added: list[str]  # newly added, in the order asked
    already: list[str]  # were on the list before
    over_limit: list[str]  # refused: the tier's watchlist is full


async def active_symbols(conn: asyncpg.Pool | asyncpg.Connection) -> dict[str, str]:
    """symbol -> base asset, for every symbol that trades now."""
    return {r["symbol"]: r["base_asset"] for r in await conn.fetch(ACTIVE_SYMBOLS)}


async def list_symbols(conn: asyncpg.Pool | asyncpg.Connection, user_id: int) -> list[str]:
    return [r["symbol"] for r in await conn.fetch(LIST, user_id)]


async def add(pool: asyncpg.Pool, user_id: int, symbols: Sequence[str], limit: int | None) -> AddResult:
    """Add symbols up to `limit` entries in total (None: unlimited), atomically per user."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(LOCK_USER, user_id)
        current = {r["symbol"] for r in await conn.fetch(LIST, user_id)}
        already = [s for s in symbols if s in current]
        fresh = [s for s in dict.fromkeys(symbols) if s not in current]
        room = len(fresh) if limit is None else max(0, limit - len(current))
        take, over = fresh[:room], fresh[room:]
        if take:
            await conn.fetch(ADD, user_id, take)
    return AddResult(added=take, already=already, over_limit=over)


async def remove(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, symbols: Sequence[str]) -> list[str]:
    return [r["symbol"] for r in await conn.fetch(REMOVE, user_id, list(symbols))]


async def clear(conn: asyncpg.Pool | asyncpg.Connection, user_id: int) -> list[str]:
    return [r["symbol"] for r in await conn.fetch(CLEAR, user_id)]
