"""A refunded payment, whatever its provider (Stars: `refunded_payment`, the reconciliation and
`/refund`; Stripe: `charge.refunded`): marked refunded once, and the plan set by the one
entitlement rule (`core.entitlements.after_refund`) inside the caller's transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.entitlements import Entitlement, after_refund
from core.tiers import Tier
from db import payments as payments_db
from db import subscriptions as subscriptions_db
from db.tier_history import Cause, Conn, change_tier, lock_user

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refunded:
    payment_id: int
    user_id: int
    charge_id: str
    before: Entitlement
    after: Entitlement


async def refund_payment(
    conn: Conn,
    provider: str,
    charge_id: str,
    now: datetime,
    *,
    period: timedelta | None = None,
    stop_renewal: bool = True,
) -> Refunded | None:
    """Mark the payment refunded and undo its tier change (`period`: what one payment buys, taken
    off when the plan changed since; by default the period the payment paid); None when unknown
    or refunded before. The caller holds the transaction. With `stop_renewal`, a refunded
    subscription payment marks the stored subscription as not renewing (Stars; Stripe tells its
    subscription's state by its own events)."""
    payment = await payments_db.lock_by_charge(conn, provider, charge_id)
    if payment is None:
        log.warning(
            "refund for a payment we never recorded", extra={"provider": provider, "charge_id": charge_id}
        )
        return None
    if payment.status == "refunded":
        log.info("refund already recorded", extra={"provider": provider, "charge_id": charge_id})
        return None
    await payments_db.mark_refunded(conn, payment.id, now)
    stored = await lock_user(conn, payment.user_id)
    assert stored is not None  # payments.user_id references users
    current = Entitlement(Tier(stored.tier), stored.expires_at)
    if payment.tier_before is None or payment.tier_after is None:
        restored = current
    else:
        restored = after_refund(
            current,
            before=Entitlement(Tier(payment.tier_before), payment.expires_before),
            after=Entitlement(Tier(payment.tier_after), payment.expires_after),
            period=period if period is not None else timedelta(days=payment.period_days),
        )
    await change_tier(
        conn,
        payment.user_id,
        restored.tier.value,
        restored.expires_at,
        cause=Cause.REFUND,
        payment_id=payment.id,
        before=stored,
    )
    if stop_renewal and payment.kind == "subscription":
        await subscriptions_db.set_renews(conn, payment.user_id, provider, False)
    log.info(
        "refund recorded",
        extra={
            "provider": provider,
            "user_id": payment.user_id,
            "charge_id": charge_id,
            "tier": restored.tier.value,
        },
    )
    return Refunded(payment.id, payment.user_id, charge_id, current, restored)
