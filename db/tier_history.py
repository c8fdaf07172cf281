"""The one way a user's tier changes: the `users` row and its `tier_history` row, written together.

Every cause goes through `change_tier`: Stars payments, Stripe payments, refunds, admin grants and
revokes, expiry. Call it inside a transaction; it locks the user row so concurrent changes to one
user apply one after the other. Alerts already queued for the user move up to the new tier's
delay on an upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.tiers import limits

Conn = asyncpg.Connection | PoolConnectionProxy


class Cause(StrEnum):
    STARS_PAYMENT = "stars_payment"
    STRIPE_PAYMENT = "stripe_payment"
    REFUND = "refund"
    ADMIN_GRANT = "admin_grant"
    ADMIN_REVOKE = "admin_revoke"
    EXPIRY = "expiry"


LOCK_USER = "SELECT tier, tier_expires_at FROM users WHERE id = $1 FOR UPDATE"
SET_TIER = "UPDATE users SET tier = $2, tier_expires_at = $3 WHERE id = $1"
INSERT_HISTORY = """
INSERT INTO tier_history
    (user_id, tier_before, expires_before, tier_after, expires_after, cause, payment_id, admin_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
# Alerts already queued for the user (pending delivery rows) follow an upgrade: due at the new
# tier's delay after detection and at its priority, never later than they were.
RETIME_PENDING = """
UPDATE deliveries d
SET due_at = LEAST(d.due_at, a.detected_at + $2::interval), priority = LEAST(d.priority, $3),
    updated_at = now()
FROM alerts a
WHERE d.chat_id = $1 AND d.status = 'pending' AND a.id = d.alert_id
  AND (d.due_at > a.detected_at + $2::interval OR d.priority > $3)
"""
HISTORY = """
SELECT tier_before, expires_before, tier_after, expires_after, cause, payment_id, admin_id, created_at
FROM tier_history WHERE user_id = $1 ORDER BY id
"""


@dataclass(frozen=True, slots=True)
class StoredTier:
    tier: str
    expires_at: datetime | None


async def lock_user(conn: Conn, user_id: int) -> StoredTier | None:
    """The user's stored tier, row-locked until the transaction ends; None for an unknown user."""
    row = await conn.fetchrow(LOCK_USER, user_id)
    return None if row is None else StoredTier(row["tier"], row["tier_expires_at"])


async def change_tier(
    conn: Conn,
    user_id: int,
    tier: str,
    expires_at: datetime | None,
    *,
    cause: Cause,
    payment_id: int | None = None,
    admin_id: int | None = None,
    before: StoredTier | None = None,
) -> StoredTier | None:
    """Set the tier and record the change; returns the state before, None for an unknown user.

    `before` is the state from a `lock_user` the caller already did in this transaction."""
    if before is None:
        before = await lock_user(conn, user_id)
        if before is None:
            return None
    await conn.execute(SET_TIER, user_id, tier, expires_at)
    table = limits(tier)
    await conn.execute(RETIME_PENDING, user_id, table.alert_delay, table.delivery_priority)
    await conn.execute(
        INSERT_HISTORY,
        user_id,
        before.tier,
        before.expires_at,
        tier,
        expires_at,
        cause.value,
        payment_id,
        admin_id,
    )
    return before


async def history(conn: Conn | asyncpg.Pool, user_id: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(HISTORY, user_id))
