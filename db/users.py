"""The `users` table as the bot sees it: created on first contact, language, tier, ban/block flags."""

from __future__ import annotations

import asyncpg

# Creates the user (and their default settings row) on first contact. A later contact writes only
# when something changed: the name, the first private message, or `last_seen_at` older than
# SEEN_EVERY (reading the Mini App is not a write load: one write per user per few minutes). It
# never writes the language the user chose. Without a write the row is read as it is.
SEEN_EVERY = "5 minutes"
UPSERT_SEEN = f"""
WITH u AS (
    INSERT INTO users AS u (id, username, first_name, language, bot_started_at)
    VALUES ($1, $2, $3, $4, CASE WHEN $5::boolean THEN now() END)
    ON CONFLICT (id) DO UPDATE SET
        username = EXCLUDED.username,
        first_name = EXCLUDED.first_name,
        last_seen_at = now(),
        bot_started_at = COALESCE(u.bot_started_at, EXCLUDED.bot_started_at)
    WHERE u.last_seen_at < now() - interval '{SEEN_EVERY}'
       OR u.username IS DISTINCT FROM EXCLUDED.username
       OR u.first_name IS DISTINCT FROM EXCLUDED.first_name
       OR (u.bot_started_at IS NULL AND EXCLUDED.bot_started_at IS NOT NULL)
    RETURNING u.id, u.language, u.tier, u.tier_expires_at, u.banned, u.blocked, u.created_at,
        u.bot_started_at IS NOT NULL AS can_write
), s AS (
    INSERT INTO user_settings (user_id) SELECT id FROM u
    ON CONFLICT (user_id) DO NOTHING
)
SELECT * FROM u
UNION ALL
SELECT id, language, tier, tier_expires_at, banned, blocked, created_at, bot_started_at IS NOT NULL
FROM users WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM u)
"""

SET_LANGUAGE = "UPDATE users SET language = $2 WHERE id = $1"

# A user signed in on the web (their session names them); the same fields as UPSERT_SEEN returns.
GET = """
SELECT id, first_name, language, tier, tier_expires_at, banned, blocked, created_at,
       bot_started_at IS NOT NULL AS can_write
FROM users WHERE id = $1
"""

# A user who writes to the bot again has unblocked it.
CLEAR_BLOCKED = "UPDATE users SET blocked = false WHERE id = $1 AND blocked"


async def upsert_seen(
    conn: asyncpg.Pool | asyncpg.Connection,
    user_id: int,
    *,
    username: str | None,
    first_name: str | None,
    language: str,
    in_private: bool = False,
) -> asyncpg.Record:
    """Create or refresh the user. `in_private`: they wrote to the bot in private, so it may message
    them from now on (`can_write` in the returned row)."""
    for _ in range(2):
        record: asyncpg.Record | None = await conn.fetchrow(
            UPSERT_SEEN, user_id, username, first_name, language, in_private
        )
        if record is not None:
            return record
        # Created by a concurrent first contact after this statement's snapshot: read it again.
    raise RuntimeError(f"user {user_id} neither created nor found")


async def get(conn: asyncpg.Pool | asyncpg.Connection, user_id: int) -> asyncpg.Record | None:
    record: asyncpg.Record | None = await conn.fetchrow(GET, user_id)
    return record


async def set_language(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, language: str) -> None:
    await conn.execute(SET_LANGUAGE, user_id, language)


async def clear_blocked(conn: asyncpg.Pool | asyncpg.Connection, user_id: int) -> None:
    await conn.execute(CLEAR_BLOCKED, user_id)
