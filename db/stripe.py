"""Stripe's side of billing in PostgreSQL: received webhook events (each applied once), the
Stripe customer of each user, and the renewal state of a Stripe subscription applied in event order.

Tier changes go through `db.tier_history.change_tier`, payments through `db.payments`."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

PROVIDER = "stripe"

# A second copy of an event (Stripe retries, replays) inserts nothing: the caller then applies nothing.
RECORD_EVENT = """
INSERT INTO webhook_events (provider, event_id, event_type) VALUES ($1, $2, $3)
ON CONFLICT (provider, event_id) DO NOTHING
RETURNING event_id
"""
LINK_CUSTOMER = """
INSERT INTO stripe_customers (user_id, customer_id) VALUES ($1, $2)
ON CONFLICT (user_id) DO UPDATE SET customer_id = EXCLUDED.customer_id
"""
CUSTOMER_OF_USER = "SELECT customer_id FROM stripe_customers WHERE user_id = $1"
USER_OF_CUSTOMER = "SELECT user_id FROM stripe_customers WHERE customer_id = $1"
USER_EXISTS = "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)"
LANGUAGE = "SELECT language FROM users WHERE id = $1"

# The renewal state of a subscription at `$6`; a state older than the one stored is ignored.
# A row that does not exist yet (the state event came first) is created with it.
SET_STATE = """
INSERT INTO subscriptions (user_id, provider, external_id, tier, period_end, renews, state_at)
VALUES ($1, 'stripe', $2, $3, $4, $5, $6)
ON CONFLICT (user_id, provider) DO UPDATE SET
    renews = EXCLUDED.renews, state_at = EXCLUDED.state_at,
    period_end = GREATEST(subscriptions.period_end, EXCLUDED.period_end), updated_at = now()
WHERE subscriptions.external_id = EXCLUDED.external_id
  AND (subscriptions.state_at IS NULL OR subscriptions.state_at <= EXCLUDED.state_at)
"""


async def record_event(conn: Conn, event_id: str, event_type: str) -> bool:
    """Store the event id; False when it was stored already (the event is applied)."""
    return await conn.fetchval(RECORD_EVENT, PROVIDER, event_id, event_type) is not None


async def user_exists(conn: Conn, user_id: int) -> bool:
    return bool(await conn.fetchval(USER_EXISTS, user_id))


async def language_of(conn: Conn | asyncpg.Pool, user_id: int) -> str | None:
    value: str | None = await conn.fetchval(LANGUAGE, user_id)
    return value


async def link_customer(conn: Conn, user_id: int, customer_id: str) -> None:
    await conn.execute(LINK_CUSTOMER, user_id, customer_id)


async def customer_of_user(conn: Conn | asyncpg.Pool, user_id: int) -> str | None:
    value: str | None = await conn.fetchval(CUSTOMER_OF_USER, user_id)
    return value


async def user_of_customer(conn: Conn, customer_id: str) -> int | None:
    value: int | None = await conn.fetchval(USER_OF_CUSTOMER, customer_id)
    return value


async def set_state(
    conn: Conn,
    user_id: int,
    *,
    subscription_id: str,
    tier: str,
    period_end: datetime,
    renews: bool,
    state_at: datetime,
) -> None:
    await conn.execute(SET_STATE, user_id, subscription_id, tier, period_end, renews, state_at)


# A refunded subscription payment ends the renewal of its subscription, if that is still the user's
# Stripe subscription (not one that replaced it since): the subscription's id, to cancel at Stripe.
STOP_REFUNDED_RENEWAL = """
UPDATE subscriptions s SET renews = false, updated_at = now()
FROM payments p
WHERE p.provider = 'stripe' AND p.provider_charge_id = $1 AND p.kind = 'subscription'
  AND s.user_id = p.user_id AND s.provider = 'stripe' AND s.external_id = p.invoice_payload
RETURNING s.external_id
"""


async def stop_refunded_renewal(conn: Conn, invoice_id: str) -> str | None:
    """Stop the renewal of the subscription whose invoice `invoice_id` was refunded; its id, or None
    when the payment paid no subscription that is still the user's."""
    value: str | None = await conn.fetchval(STOP_REFUNDED_RENEWAL, invoice_id)
    return value
