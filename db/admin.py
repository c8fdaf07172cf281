"""Admin actions on users (each written with its audit row in one transaction) and the figures
of `/stats`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.entitlements import Entitlement, after_grant, after_revoke
from core.tiers import Tier
from db.tier_history import Cause, change_tier, lock_user

Conn = asyncpg.Connection | PoolConnectionProxy

SET_BANNED = "UPDATE users SET banned = $2 WHERE id = $1 RETURNING id"
AUDIT = "INSERT INTO admin_audit (admin_id, action, target, details) VALUES ($1, $2, $3, $4)"

USERS_PER_TIER = """
SELECT CASE WHEN tier <> 'free' AND tier_expires_at IS NOT NULL AND tier_expires_at <= $1 THEN 'free'
            ELSE tier END AS tier,
       count(*) AS n
FROM users WHERE NOT banned
GROUP BY 1
"""
ACTIVE_SINCE = "SELECT count(*) FROM users WHERE last_seen_at >= $1"
ALERTS_SINCE = "SELECT count(*) FROM alerts WHERE detected_at >= $1 AND level_multiple IS NULL"  # public
# Per-day counters kept by deliveries' statement triggers (migration 122): a day's figures are a
# few rows per status, whatever the number of deliveries (counting the rows took 632 ms at a
# million a day).
DELIVERIES_SINCE = """
SELECT status, sum(n)::bigint AS n FROM delivery_day_counts WHERE day >= $1::date
GROUP BY status HAVING sum(n) <> 0
"""
# Each status through its own partial index (an IN list of both is a scan of the whole table).
PENDING_DELIVERIES = """
SELECT (SELECT count(*) FROM deliveries WHERE status = 'pending')
     + (SELECT count(*) FROM deliveries WHERE status = 'sending')
"""


async def audit(conn: Conn, admin_id: int, action: str, target: str | None, details: dict[str, Any]) -> None:
    await conn.execute(AUDIT, admin_id, action, target, details)


@dataclass(frozen=True, slots=True)
class Change:
    """An admin's grant or revoke: the plan before and after (equal when nothing changed)."""

    before: Entitlement
    after: Entitlement


async def grant(
    conn: Conn, admin_id: int, user_id: int, tier: Tier, until: datetime | None, now: datetime
) -> Change | None:
    """Grant `tier` until `until` (None: for ever) by the one entitlement rule: never lowers or
    shortens what the user has. None for an unknown user. Audited either way."""
    return await _apply(conn, admin_id, user_id, "grant", tier, until, now)


async def revoke(conn: Conn, admin_id: int, user_id: int, now: datetime) -> Change | None:
    """Back to free; None for an unknown user. Audited either way."""
    return await _apply(conn, admin_id, user_id, "revoke", Tier.FREE, None, now)


async def _apply(
    conn: Conn, admin_id: int, user_id: int, action: str, tier: Tier, until: datetime | None, now: datetime
) -> Change | None:
    async with conn.transaction():
        stored = await lock_user(conn, user_id)
        change: Change | None = None
        if stored is not None:
            before = Entitlement(Tier(stored.tier), stored.expires_at)
            if action == "revoke":
                after = after_revoke(before)
            else:
                after = after_grant(before, tier, now=now, until=until)
            if after != before:
                cause = Cause.ADMIN_REVOKE if action == "revoke" else Cause.ADMIN_GRANT
                await change_tier(
                    conn,
                    user_id,
                    after.tier.value,
                    after.expires_at,
                    cause=cause,
                    admin_id=admin_id,
                    before=stored,
                )
            change = Change(before.effective(now), after.effective(now))
        details = {
            "tier": tier.value,
            "expires_at": until.isoformat() if until else None,
            "ok": change is not None,
            "result": None if change is None else change.after.tier.value,
            "result_expires_at": (
                change.after.expires_at.isoformat()
                if change is not None and change.after.expires_at
                else None
            ),
        }
        await audit(conn, admin_id, action, str(user_id), details)
    return change


async def set_banned(conn: Conn, admin_id: int, user_id: int, banned: bool) -> bool:
    async with conn.transaction():
        found = await conn.fetchval(SET_BANNED, user_id, banned) is not None
        await audit(conn, admin_id, "ban" if banned else "unban", str(user_id), {"ok": found})
    return found


@dataclass(frozen=True, slots=True)
class Stats:
    users_per_tier: dict[str, int]
    active_today: int
    alerts_today: int
    deliveries_today: dict[str, int] = field(default_factory=dict)
    pending_deliveries: int = 0


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


async def stats(conn: Conn, now: datetime, day_start: datetime) -> Stats:
    """The figures of `/stats`; deliveries are counted per UTC day of their creation, from the
    day of `day_start` on."""
    tiers = {row["tier"]: row["n"] for row in await conn.fetch(USERS_PER_TIER, now)}
    return Stats(
        users_per_tier={tier: tiers.get(tier, 0) for tier in ("free", "pro", "elite")},
        active_today=await conn.fetchval(ACTIVE_SINCE, day_start),
        alerts_today=await conn.fetchval(ALERTS_SINCE, day_start),
        deliveries_today={
            row["status"]: row["n"] for row in await conn.fetch(DELIVERIES_SINCE, _utc_day(day_start))
        },
        pending_deliveries=await conn.fetchval(PENDING_DELIVERIES),
    )
