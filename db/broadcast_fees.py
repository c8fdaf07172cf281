"""The Stars paid broadcasts cost, as Telegram billed them: one row per fee transaction of the bot's
Star ledger (unique by its id, so reading the ledger twice counts nothing twice), and the cursor of
the job that reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

NANOSTARS_PER_STAR = 1_000_000_000

RECORD = """
INSERT INTO paid_broadcast_fees (transaction_id, request_count, nanostars, charged_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (transaction_id) DO NOTHING
RETURNING request_count, nanostars
"""
TOTALS_SINCE = """
SELECT coalesce(sum(request_count), 0)::bigint AS messages, coalesce(sum(nanostars), 0)::bigint AS nanostars
FROM paid_broadcast_fees WHERE $1::timestamptz IS NULL OR charged_at >= $1
"""
GET_CURSOR = "SELECT next_offset FROM paid_broadcast_cursor"
SET_CURSOR = "UPDATE paid_broadcast_cursor SET next_offset = $1, updated_at = now()"


@dataclass(frozen=True, slots=True)
class Fee:
    transaction_id: str
    request_count: int
    nanostars: int
    charged_at: datetime


@dataclass(frozen=True, slots=True)
class Totals:
    messages: int = 0
    nanostars: int = 0

    @property
    def stars(self) -> float:
        return self.nanostars / NANOSTARS_PER_STAR

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.messages + other.messages, self.nanostars + other.nanostars)


async def record(conn: Conn, fees: list[Fee], next_offset: int) -> Totals:
    """Store the fees not stored yet and move the cursor, in one transaction; returns what was new."""
    new = Totals()
    async with conn.transaction():
        for fee in fees:
            row = await conn.fetchrow(
                RECORD, fee.transaction_id, fee.request_count, fee.nanostars, fee.charged_at
            )
            if row is not None:
                new += Totals(row["request_count"], row["nanostars"])
        await conn.execute(SET_CURSOR, next_offset)
    return new


async def totals_since(conn: Conn, since: datetime | None = None) -> Totals:
    """Billed messages and their Stars charged since `since` (None: in all)."""
    row = await conn.fetchrow(TOTALS_SINCE, since)
    assert row is not None
    return Totals(row["messages"], row["nanostars"])


async def get_cursor(conn: Conn) -> int:
    """How many of the bot's Star transactions the fee job has read."""
    value: int = await conn.fetchval(GET_CURSOR)
    return value
