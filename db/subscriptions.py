"""Renewing subscriptions (`subscriptions`), the user's plan as the bot and the Mini App show it,
and the lifecycle queries: expired tiers and the expiry reminders due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

UPSERT = """
INSERT INTO subscriptions (user_id, provider, external_id, tier, period_end, renews)
VALUES ($1, $2, $3, $4, $5, true)
ON CONFLICT (user_id, provider) DO UPDATE SET
    external_id = EXCLUDED.external_id, tier = EXCLUDED.tier,
    period_end = GREATEST(subscriptions.period_end, EXCLUDED.period_end),
    renews = CASE WHEN subscriptions.external_id = EXCLUDED.external_id THEN subscriptions.renews
                  ELSE true END,
    updated_at = now()
"""
SET_RENEWS = """
UPDATE subscriptions SET renews = $3, updated_at = now()
WHERE user_id = $1 AND provider = $2 RETURNING external_id
"""
GET = """
SELECT provider, external_id, tier, period_end, renews FROM subscriptions
WHERE user_id = $1 ORDER BY period_end DESC LIMIT 1
"""
RENEWING = """
SELECT provider, external_id, tier, period_end, renews FROM subscriptions
WHERE user_id = $1 AND provider = $2 AND renews AND period_end > $3
"""
RENEWING_ANY = """
SELECT provider, external_id, tier, period_end, renews FROM subscriptions
WHERE user_id = $1 AND renews AND period_end > $2
ORDER BY CASE tier WHEN 'elite' THEN 0 WHEN 'pro' THEN 1 ELSE 2 END, period_end DESC
"""

# The plan as shown: the stored tier (expiry-adjusted by the caller), expiry, renewal, provider.
PLAN = """
SELECT u.id, u.language, u.tier, u.tier_expires_at,
       s.provider AS sub_provider, s.renews AS sub_renews, s.tier AS sub_tier,
       (SELECT h.cause FROM tier_history h
        WHERE h.user_id = u.id AND h.cause IN ('stars_payment', 'stripe_payment', 'admin_grant')
        ORDER BY h.id DESC LIMIT 1) AS last_cause
FROM users u
LEFT JOIN LATERAL (
    SELECT provider, renews, tier FROM subscriptions WHERE user_id = u.id
    ORDER BY renews DESC, period_end DESC LIMIT 1
) s ON true
WHERE u.id = $1
"""

# Paid tiers whose expiry has passed. A tier kept by a renewing subscription gets `$2` of grace
# (the renewal payment arrives around the expiry moment) before it goes.
EXPIRED = """
SELECT u.id, u.language, u.tier, u.tier_expires_at
FROM users u
WHERE u.tier <> 'free' AND u.tier_expires_at IS NOT NULL AND u.tier_expires_at <= $1
  AND (u.tier_expires_at <= $1 - $2::interval OR NOT EXISTS (
        SELECT 1 FROM subscriptions s WHERE s.user_id = u.id AND s.renews AND s.tier = u.tier))
ORDER BY u.tier_expires_at
LIMIT $3
"""

# Paid tiers ending within `$2` that no subscription will renew, with the reminders already sent.
EXPIRING = """
SELECT u.id, u.language, u.tier, u.tier_expires_at,
       coalesce(array_agg(r.days_before) FILTER (WHERE r.days_before IS NOT NULL), '{}') AS sent
FROM users u
LEFT JOIN expiry_reminders r ON r.user_id = u.id AND r.expires_at = u.tier_expires_at
WHERE u.tier <> 'free' AND u.tier_expires_at > $1 AND u.tier_expires_at <= $1 + $2::interval
  AND NOT u.banned AND NOT u.blocked
  AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id AND s.renews AND s.tier = u.tier)
GROUP BY u.id
ORDER BY u.tier_expires_at
LIMIT $3
"""
MARK_REMINDED = """
INSERT INTO expiry_reminders (user_id, expires_at, days_before)
SELECT $1, $2, unnest($3::integer[])
ON CONFLICT DO NOTHING
RETURNING days_before
"""


_CAUSE_PROVIDER = {"stars_payment": "stars", "stripe_payment": "stripe", "admin_grant": "admin"}


@dataclass(frozen=True, slots=True)
class Subscription:
    provider: str
    external_id: str
    tier: str
    period_end: datetime
    renews: bool


@dataclass(frozen=True, slots=True)
class TierRow:
    user_id: int
    language: str
    tier: str
    expires_at: datetime | None
    reminders_sent: frozenset[int] = frozenset()


async def upsert(
    conn: Conn, user_id: int, *, provider: str, external_id: str, tier: str, period_end: datetime
) -> None:
    await conn.execute(UPSERT, user_id, provider, external_id, tier, period_end)


async def set_renews(conn: Conn | asyncpg.Pool, user_id: int, provider: str, renews: bool) -> str | None:
    """Switch renewal; returns the subscription's external id, None when there is none."""
    value: str | None = await conn.fetchval(SET_RENEWS, user_id, provider, renews)
    return value


async def get(conn: Conn | asyncpg.Pool, user_id: int) -> Subscription | None:
    row = await conn.fetchrow(GET, user_id)
    if row is None:
        return None
    return Subscription(row["provider"], row["external_id"], row["tier"], row["period_end"], row["renews"])


async def renewing(
    conn: Conn | asyncpg.Pool, user_id: int, provider: str, now: datetime
) -> Subscription | None:
    """The user's subscription with `provider` that renews (and has not run out); None otherwise."""
    row = await conn.fetchrow(RENEWING, user_id, provider, now)
    if row is None:
        return None
    return Subscription(row["provider"], row["external_id"], row["tier"], row["period_end"], row["renews"])


async def renewing_any(conn: Conn | asyncpg.Pool, user_id: int, now: datetime) -> list[Subscription]:
    """Every subscription of the user that renews (Stars, card), the highest tier first."""
    rows = await conn.fetch(RENEWING_ANY, user_id, now)
    return [
        Subscription(r["provider"], r["external_id"], r["tier"], r["period_end"], r["renews"]) for r in rows
    ]


async def me_fields(conn: Conn | asyncpg.Pool, user_id: int, now: datetime) -> dict[str, Any] | None:
    """The plan part of `GET /api/me`: `{"id", "tier", "tierExpiresAt", "language", "renews",
    "provider"}`; None for an unknown user.

    `tier` is what the user has now (an expired paid tier is "free"); `tierExpiresAt` is ISO 8601
    UTC or None; `renews` says a subscription will renew the tier; `provider` is "stars",
    "stripe" or "admin" for a paid tier (who gave it), None on free."""
    row = await conn.fetchrow(PLAN, user_id)
    if row is None:
        return None
    expires: datetime | None = row["tier_expires_at"]
    tier: str = row["tier"]
    if tier != "free" and expires is not None and expires <= now:
        tier, expires = "free", None
    renews = bool(row["sub_renews"]) and row["sub_tier"] == tier
    if tier == "free":
        provider = None
    elif renews:
        provider = row["sub_provider"]
    else:
        provider = _CAUSE_PROVIDER.get(row["last_cause"], "admin")
    return {
        "id": row["id"],
        "tier": tier,
        "tierExpiresAt": expires.astimezone(UTC).isoformat().replace("+00:00", "Z") if expires else None,
        "language": row["language"],
        "renews": renews,
        "provider": provider,
    }


async def expired(conn: Conn | asyncpg.Pool, now: datetime, grace: timedelta, limit: int) -> list[TierRow]:
    rows = await conn.fetch(EXPIRED, now, grace, limit)
    return [TierRow(r["id"], r["language"], r["tier"], r["tier_expires_at"]) for r in rows]


async def expiring(conn: Conn | asyncpg.Pool, now: datetime, within: timedelta, limit: int) -> list[TierRow]:
    rows = await conn.fetch(EXPIRING, now, within, limit)
    return [
        TierRow(r["id"], r["language"], r["tier"], r["tier_expires_at"], frozenset(r["sent"])) for r in rows
    ]


async def mark_reminded(
    conn: Conn | asyncpg.Pool, user_id: int, expires_at: datetime, days: list[int]
) -> set[int]:
    """Record reminders; returns the ones this call recorded (the others were sent already)."""
    rows = await conn.fetch(MARK_REMINDED, user_id, expires_at, days)
    return {r["days_before"] for r in rows}
