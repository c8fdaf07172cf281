"""The `payments` table: each provider charge recorded once, with the tier state it changed, so a
refund can undo exactly that payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

# ON CONFLICT makes a second copy of the same charge (a redelivered update, a concurrent one, the
# reconciliation finding it again) a no-op: it waits for the first insert and returns no row.
INSERT_PAYMENT = """
INSERT INTO payments (user_id, provider, provider_charge_id, amount, currency, tier, period_days,
                      kind, invoice_payload, is_recurring, source)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (provider, provider_charge_id) DO NOTHING
RETURNING id
"""
SET_EFFECT = """
UPDATE payments SET tier_before = $2, expires_before = $3, tier_after = $4, expires_after = $5
WHERE id = $1
"""
LOCK_BY_CHARGE = """
SELECT id, user_id, provider_charge_id, amount, tier, kind, status, is_recurring,
       tier_before, expires_before, tier_after, expires_after, period_days
FROM payments WHERE provider = $1 AND provider_charge_id = $2
FOR UPDATE
"""
GET_BY_CHARGE = """
SELECT id, user_id, provider_charge_id, amount, tier, kind, status, is_recurring, source, created_at
FROM payments WHERE provider = $1 AND provider_charge_id = $2
"""
RECENT = """
SELECT provider, provider_charge_id, amount, currency, tier, kind, status, created_at
FROM payments WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2
"""
MARK_REFUNDED = "UPDATE payments SET status = 'refunded', refunded_at = $2 WHERE id = $1"

# A user known only from a Star transaction (their update never reached the bot).
ENSURE_USER = """
WITH u AS (
    INSERT INTO users (id, username, first_name, language) VALUES ($1, $2, $3, $4)
    ON CONFLICT (id) DO NOTHING RETURNING id
)
INSERT INTO user_settings (user_id) SELECT id FROM u ON CONFLICT (user_id) DO NOTHING
"""

GET_CURSOR = "SELECT next_offset FROM star_reconciliation"
SET_CURSOR = "UPDATE star_reconciliation SET next_offset = $1, last_run_at = $2, updated_at = now()"
LAST_RUN = "SELECT last_run_at FROM star_reconciliation"


@dataclass(frozen=True, slots=True)
class NewPayment:
    user_id: int
    provider: str
    charge_id: str
    amount: int
    currency: str
    tier: str
    period_days: int
    kind: str | None
    invoice_payload: str | None
    is_recurring: bool
    source: str


@dataclass(frozen=True, slots=True)
class StoredPayment:
    id: int
    user_id: int
    charge_id: str
    amount: int
    tier: str
    kind: str | None
    status: str
    is_recurring: bool
    tier_before: str | None
    expires_before: datetime | None
    tier_after: str | None
    expires_after: datetime | None
    period_days: int = 30


async def insert(conn: Conn, payment: NewPayment) -> int | None:
    """The new row's id; None when this charge is already recorded."""
    value: int | None = await conn.fetchval(
        INSERT_PAYMENT,
        payment.user_id,
        payment.provider,
        payment.charge_id,
        payment.amount,
        payment.currency,
        payment.tier,
        payment.period_days,
        payment.kind,
        payment.invoice_payload,
        payment.is_recurring,
        payment.source,
    )
    return value


async def set_effect(
    conn: Conn,
    payment_id: int,
    *,
    tier_before: str,
    expires_before: datetime | None,
    tier_after: str,
    expires_after: datetime | None,
) -> None:
    await conn.execute(SET_EFFECT, payment_id, tier_before, expires_before, tier_after, expires_after)


async def lock_by_charge(conn: Conn, provider: str, charge_id: str) -> StoredPayment | None:
    row = await conn.fetchrow(LOCK_BY_CHARGE, provider, charge_id)
    if row is None:
        return None
    return StoredPayment(
        id=row["id"],
        user_id=row["user_id"],
        charge_id=row["provider_charge_id"],
        amount=row["amount"],
        tier=row["tier"],
        kind=row["kind"],
        status=row["status"],
        is_recurring=row["is_recurring"],
        tier_before=row["tier_before"],
        expires_before=row["expires_before"],
        tier_after=row["tier_after"],
        expires_after=row["expires_after"],
        period_days=row["period_days"],
    )


async def get_by_charge(conn: Conn | asyncpg.Pool, provider: str, charge_id: str) -> asyncpg.Record | None:
    record: asyncpg.Record | None = await conn.fetchrow(GET_BY_CHARGE, provider, charge_id)
    return record


async def recent(conn: Conn | asyncpg.Pool, user_id: int, limit: int) -> list[asyncpg.Record]:
    """The user's last `limit` charges, newest first (any provider, refunded ones too)."""
    return list(await conn.fetch(RECENT, user_id, limit))


async def mark_refunded(conn: Conn, payment_id: int, at: datetime) -> None:
    await conn.execute(MARK_REFUNDED, payment_id, at)


async def ensure_user(
    conn: Conn, user_id: int, *, username: str | None, first_name: str | None, language: str
) -> None:
    await conn.execute(ENSURE_USER, user_id, username, first_name, language)


async def get_cursor(conn: Conn) -> int:
    """How many of the bot's Star transactions the last reconciliation read."""
    value: int = await conn.fetchval(GET_CURSOR)
    return value


async def set_cursor(conn: Conn, offset: int, run_at: datetime) -> None:
    """Only the reconciliation job writes it (at the end of a run), under its advisory lock."""
    await conn.execute(SET_CURSOR, offset, run_at)


async def last_reconciliation(conn: Conn) -> datetime | None:
    """When the Stars reconciliation last completed; None if it never has (a fresh install)."""
    value: datetime | None = await conn.fetchval(LAST_RUN)
    return value
