"""Groups and channels connected by an admin: they receive SPIKE alerts as their tier would."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

CONNECT = """
INSERT INTO chats (id, kind, title, tier, connected_by, active)
VALUES ($1, $2, $3, $4, $5, true)
ON CONFLICT (id) DO UPDATE
SET kind = EXCLUDED.kind, title = EXCLUDED.title, tier = EXCLUDED.tier,
    connected_by = EXCLUDED.connected_by, active = true
"""

DISCONNECT = "UPDATE chats SET active = false WHERE id = $1 AND active RETURNING id"


async def connect(
    conn: Conn, chat_id: int, *, kind: str, title: str | None, tier: str, admin_id: int
) -> None:
    await conn.execute(CONNECT, chat_id, kind, title, tier, admin_id)


async def disconnect(conn: Conn, chat_id: int) -> bool:
    return await conn.fetchval(DISCONNECT, chat_id) is not None
