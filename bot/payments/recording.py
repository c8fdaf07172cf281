"""Recording a Stars payment or refund exactly once, together with the tier change it causes.

One transaction holds the payment row (unique on the charge id: a second copy of the same update,
concurrent or late, inserts nothing and changes nothing), the user's row lock, the new tier, the
tier-history row and, for a subscription, the renewing-subscription row.

A payment whose currency is not Stars or whose amount is below the price its payload names (the
plan it was sold at) is recorded as paid but changes no tier: `Recorded.mismatch` says why, the
caller warns the admins, and a person decides (a refund, or granting by hand).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from core.entitlements import Entitlement, after_paid_until, after_pass
from core.plans import PERIOD, BadPayload, Kind, parse_payload
from core.tiers import Tier
from db import payments as payments_db
from db import subscriptions as subscriptions_db
from db.refunds import Refunded, refund_payment
from db.tier_history import Cause, StoredTier, change_tier, lock_user

log = logging.getLogger(__name__)

PROVIDER = "stars"


@dataclass(frozen=True, slots=True)
class StarsCharge:
    """A successful Stars payment, from a `successful_payment` message or a Star transaction."""

    user_id: int
    charge_id: str  # telegram_payment_charge_id (= StarTransaction.id)
    amount: int
    payload: str
    is_recurring: bool  # a renewal: Telegram's is_recurring without is_first_recurring
    subscription_expires_at: datetime | None
    source: str  # 'update' or 'reconciliation'
    currency: str = "XTR"


@dataclass(frozen=True, slots=True)
class Recorded:
    payment_id: int
    user_id: int
    charge_id: str
    kind: Kind
    before: Entitlement
    after: Entitlement
    mismatch: str | None = None  # why nothing was granted: the charge does not pay for its plan
    # A renewing Stars subscription this payment replaces (an upgrade): its first charge id, to
    # cancel with editUserStarSubscription once the transaction is committed.
    replaced_subscription: str | None = None


def _state(stored: StoredTier) -> Entitlement:
    return Entitlement(Tier(stored.tier), stored.expires_at)


def _mismatch(charge: StarsCharge, price: int) -> str | None:
    if charge.currency != "XTR":
        return f"paid in {charge.currency[:10]!r}, not Stars"
    if charge.amount < price:
        return f"paid {charge.amount} Stars for a plan sold at {price}"
    return None


async def record_payment(pool: asyncpg.Pool, charge: StarsCharge, now: datetime) -> Recorded | None:
    """Record the charge and extend the tier; None when it was recorded before (or is not ours)."""
    try:
        payload = parse_payload(charge.payload)
    except BadPayload:
        log.error(
            "stars payment with a payload this bot did not make: not recorded",
            extra={"user_id": charge.user_id, "charge_id": charge.charge_id, "payload": charge.payload[:128]},
        )
        return None
    kind = Kind.SUBSCRIPTION if charge.subscription_expires_at is not None else payload.kind
    mismatch = _mismatch(charge, payload.price)
    async with pool.acquire() as conn, conn.transaction():
        payment_id = await payments_db.insert(
            conn,
            payments_db.NewPayment(
                user_id=charge.user_id,
                provider=PROVIDER,
                charge_id=charge.charge_id,
                amount=charge.amount,
                currency=charge.currency[:10],
                tier=payload.tier.value,
                period_days=PERIOD.days,
                kind=kind.value,
                invoice_payload=charge.payload,
                is_recurring=charge.is_recurring,
                source=charge.source,
            ),
        )
        if payment_id is None:
            log.info("stars payment already recorded", extra={"charge_id": charge.charge_id})
            return None
        stored = await lock_user(conn, charge.user_id)
        assert stored is not None  # the payments row references the user
        before = _state(stored)
        if mismatch is not None:
            await payments_db.set_effect(
                conn,
                payment_id,
                tier_before=before.tier.value,
                expires_before=before.expires_at,
                tier_after=before.tier.value,
                expires_after=before.expires_at,
            )
            log.warning(
                "stars payment does not pay for its plan: recorded, nothing granted",
                extra={"user_id": charge.user_id, "charge_id": charge.charge_id, "mismatch": mismatch},
            )
            return Recorded(
                payment_id, charge.user_id, charge.charge_id, kind, before, before, mismatch=mismatch
            )
        if kind is Kind.SUBSCRIPTION and charge.subscription_expires_at is not None:
            after = after_paid_until(before, payload.tier, now=now, until=charge.subscription_expires_at)
        else:
            after = after_pass(before, payload.tier, now=now, period=PERIOD)
        replaced = await _replaced_subscription(conn, charge, payload.tier, kind)
        await change_tier(
            conn,
            charge.user_id,
            after.tier.value,
            after.expires_at,
            cause=Cause.STARS_PAYMENT,
            payment_id=payment_id,
            before=stored,
        )
        await payments_db.set_effect(
            conn,
            payment_id,
            tier_before=before.tier.value,
            expires_before=before.expires_at,
            tier_after=after.tier.value,
            expires_after=after.expires_at,
        )
        if kind is Kind.SUBSCRIPTION and after.expires_at is not None:
            await subscriptions_db.upsert(
                conn,
                charge.user_id,
                provider=PROVIDER,
                external_id=await _subscription_id(conn, charge),
                tier=payload.tier.value,
                period_end=after.expires_at,
            )
    log.info(
        "stars payment recorded",
        extra={
            "user_id": charge.user_id,
            "charge_id": charge.charge_id,
            "kind": kind.value,
            "tier": after.tier.value,
            "expires_at": after.expires_at.isoformat() if after.expires_at else None,
            "recurring": charge.is_recurring,
            "source": charge.source,
        },
    )
    return Recorded(
        payment_id, charge.user_id, charge.charge_id, kind, before, after, replaced_subscription=replaced
    )


async def _replaced_subscription(
    conn: payments_db.Conn, charge: StarsCharge, tier: Tier, kind: Kind
) -> str | None:
    """The renewing Stars subscription of a lower tier that this payment (an upgrade) replaces,
    marked as no longer renewing; None when there is none. One renewing Stars subscription per
    user: the higher one stays."""
    current = await subscriptions_db.get(conn, charge.user_id)
    if current is None or current.provider != PROVIDER or not current.renews:
        return None
    if Tier(current.tier).rank >= tier.rank or current.external_id == charge.charge_id:
        return None
    await subscriptions_db.set_renews(conn, charge.user_id, PROVIDER, False)
    return current.external_id


async def _subscription_id(conn: payments_db.Conn, charge: StarsCharge) -> str:
    """A renewal keeps the subscription's first charge id, the one editUserStarSubscription knows;
    a first payment starts a subscription under its own charge id."""
    if not charge.is_recurring:
        return charge.charge_id
    current = await subscriptions_db.get(conn, charge.user_id)
    if current is not None and current.provider == PROVIDER:
        return current.external_id
    return charge.charge_id


async def record_refund(pool: asyncpg.Pool, charge_id: str, now: datetime) -> Refunded | None:
    """Mark the Stars payment refunded and undo its tier change (`db.refunds`); None when unknown
    or refunded before."""
    async with pool.acquire() as conn, conn.transaction():
        return await refund_payment(conn, PROVIDER, charge_id, now, period=PERIOD)
