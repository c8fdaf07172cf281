"""Per-user alert settings (`user_settings`): thresholds, alert types, quiet hours, pause."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time

import asyncpg

GET = """
SELECT spike_multiple, min_quote_volume, alert_types, watchlist_only,
       quiet_start, quiet_end, timezone, paused, daily_cap
FROM user_settings WHERE user_id = $1
"""

ENSURE = "INSERT INTO user_settings (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING"

SET_MULTIPLE = "UPDATE user_settings SET spike_multiple = $2, updated_at = now() WHERE user_id = $1"
SET_MIN_VOLUME = "UPDATE user_settings SET min_quote_volume = $2, updated_at = now() WHERE user_id = $1"
SET_ALERT_TYPES = "UPDATE user_settings SET alert_types = $2::text[], updated_at = now() WHERE user_id = $1"
TOGGLE_WATCHLIST_ONLY = """
UPDATE user_settings SET watchlist_only = NOT watchlist_only, updated_at = now()
WHERE user_id = $1 RETURNING watchlist_only
"""
SET_WATCHLIST_ONLY = "UPDATE user_settings SET watchlist_only = $2, updated_at = now() WHERE user_id = $1"
SET_PAUSED = "UPDATE user_settings SET paused = $2, updated_at = now() WHERE user_id = $1"
SET_QUIET = """
UPDATE user_settings SET quiet_start = $2, quiet_end = $3, updated_at = now() WHERE user_id = $1
"""
SET_TIMEZONE = "UPDATE user_settings SET timezone = $2, updated_at = now() WHERE user_id = $1"
SET_DAILY_CAP = "UPDATE user_settings SET daily_cap = $2, updated_at = now() WHERE user_id = $1"


@dataclass(frozen=True, slots=True)
class UserSettings:
    spike_multiple: float | None  # None: the service default
    min_quote_volume: float | None
    alert_types: frozenset[str]
    watchlist_only: bool
    quiet_start: time | None
    quiet_end: time | None
    timezone: str
    paused: bool
    daily_cap: int | None = None  # at most this many SPIKE messages a local day (core.daily_cap)


async def get(conn: asyncpg.Pool | asyncpg.Connection, user_id: int) -> UserSettings:
    record = await conn.fetchrow(GET, user_id)
    if record is None:
        await conn.execute(ENSURE, user_id)
        record = await conn.fetchrow(GET, user_id)
        assert record is not None
    return UserSettings(
        spike_multiple=record["spike_multiple"],
        min_quote_volume=record["min_quote_volume"],
        alert_types=frozenset(record["alert_types"]),
        watchlist_only=record["watchlist_only"],
        quiet_start=record["quiet_start"],
        quiet_end=record["quiet_end"],
        timezone=record["timezone"],
        paused=record["paused"],
        daily_cap=record["daily_cap"],
    )


async def set_multiple(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, value: float | None) -> None:
    await conn.execute(SET_MULTIPLE, user_id, value)


async def set_min_volume(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, value: float | None) -> None:
    await conn.execute(SET_MIN_VOLUME, user_id, value)


async def set_alert_types(
    conn: asyncpg.Pool | asyncpg.Connection, user_id: int, types: Sequence[str]
) -> None:
    await conn.execute(SET_ALERT_TYPES, user_id, list(types))


async def toggle_watchlist_only(conn: asyncpg.Pool | asyncpg.Connection, user_id: int) -> bool:
    value: bool = await conn.fetchval(TOGGLE_WATCHLIST_ONLY, user_id)
    return value


async def set_watchlist_only(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, value: bool) -> None:
    await conn.execute(SET_WATCHLIST_ONLY, user_id, value)


async def set_paused(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, paused: bool) -> None:
    await conn.execute(SET_PAUSED, user_id, paused)


async def set_quiet_hours(
    conn: asyncpg.Pool | asyncpg.Connection, user_id: int, start: time | None, end: time | None
) -> None:
    await conn.execute(SET_QUIET, user_id, start, end)


async def set_timezone(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, zone: str) -> None:
    await conn.execute(SET_TIMEZONE, user_id, zone)


async def set_daily_cap(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, cap: int | None) -> None:
    await conn.execute(ENSURE, user_id)
    await conn.execute(SET_DAILY_CAP, user_id, cap)
