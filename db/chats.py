"""Groups and channels connected by an admin: they receive SPIKE alerts as their tier would."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

CONNECT = """
INSERT INTO chats (id, kind, title, tier, connected_by, active, language)
VALUES ($1, $2, $3, $4, $5, true, $6)
ON CONFLICT (id) DO UPDATE
SET kind = EXCLUDED.kind, title = EXCLUDED.title, tier = EXCLUDED.tier,
    connected_by = EXCLUDED.connected_by, active = true, language = EXCLUDED.language,
    deactivated_at = NULL, deactivation_told = true
"""

# Chats the delivery deactivated (Telegram refused: the bot was removed) whose admin is not told
# yet; claimed (marked told) in the same statement, so two bot processes tell once.
CLAIM_DEACTIVATED = """
UPDATE chats c SET deactivation_told = true
FROM users u
WHERE NOT c.deactivation_told AND NOT c.active AND u.id = c.connected_by
RETURNING c.id, c.title, c.connected_by, u.language AS admin_language
"""

DISCONNECT = "UPDATE chats SET active = false WHERE id = $1 AND active RETURNING id"


async def connect(
    conn: Conn, chat_id: int, *, kind: str, title: str | None, tier: str, admin_id: int, language: str
) -> None:
    await conn.execute(CONNECT, chat_id, kind, title, tier, admin_id, language)


async def claim_deactivated(conn: Conn | asyncpg.Pool) -> list[asyncpg.Record]:
    """Deactivated chats whose admin is to be told now (each returned once)."""
    return list(await conn.fetch(CLAIM_DEACTIVATED))


async def disconnect(conn: Conn, chat_id: int) -> bool:
    return await conn.fetchval(DISCONNECT, chat_id) is not None
