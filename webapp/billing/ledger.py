"""What each Stripe event changes in PostgreSQL, applied inside the transaction that stores the
event id, so an event counts exactly once.

Any order of arrival gives the same end state: the tier changes by the one entitlement rule
(`core.entitlements`: never lowered, only extended to a later period end, so an older invoice
arriving last changes nothing), a payment is recorded once per invoice, and a
subscription's renewal state is only replaced by a newer one (`db.stripe.set_state`). The tier
of a cancelled subscription is left alone: it ends at its expiry, by the lifecycle job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from core.entitlements import Entitlement, after_paid_until
from core.tiers import Tier
from db import payments as payments_db
from db import stripe as stripe_db
from db import subscriptions as subscriptions_db
from db.refunds import Refunded, refund_payment
from db.tier_history import Cause, Conn, StoredTier, change_tier, lock_user
from webapp.billing.events import BadEvent, CheckoutCompleted, InvoiceEvent, SubscriptionState

log = logging.getLogger(__name__)


STARS = "stars"


@dataclass(frozen=True, slots=True)
class ReplacedStars:
    """A Stars subscription a card subscription to a higher tier replaces: its first charge id."""

    user_id: int
    charge_id: str


@dataclass(frozen=True, slots=True)
class PaymentFailed:
    """Who to tell that a renewal payment failed, and until when their tier stays."""

    user_id: int
    tier: Tier
    expires_at: datetime | None


async def _extend(
    conn: Conn, user_id: int, tier: Tier, period_end: datetime, now: datetime, payment_id: int | None
) -> StoredTier | None:
    """Give `tier` until `period_end` by the one entitlement rule (never lowers or shortens what
    the user has); the state after, or None for an unknown user."""
    before = await lock_user(conn, user_id)
    if before is None:
        return None
    current = Entitlement(Tier(before.tier), before.expires_at)
    after = after_paid_until(current, tier, now=now, until=period_end)
    if period_end <= now or after == current:
        return before
    await change_tier(
        conn,
        user_id,
        after.tier.value,
        after.expires_at,
        cause=Cause.STRIPE_PAYMENT,
        payment_id=payment_id,
        before=before,
    )
    return StoredTier(after.tier.value, after.expires_at)


async def _known_user(conn: Conn, user_id: int | None, customer_id: str | None, what: str) -> int | None:
    if user_id is None and customer_id is not None:
        user_id = await stripe_db.user_of_customer(conn, customer_id)
    if user_id is None or not await stripe_db.user_exists(conn, user_id):
        log.warning(
            "stripe event for an unknown Telegram user",
            extra={"event": what, "user_id": user_id, "customer": customer_id},
        )
        return None
    return user_id


async def checkout_completed(
    conn: Conn,
    checkout: CheckoutCompleted,
    subscription: SubscriptionState,
    *,
    now: datetime,
    event_at: datetime,
) -> ReplacedStars | None:
    """Link the customer and subscription to the user and grant the tier until the period end.
    A renewing Stars subscription of a lower tier is marked as not renewing and returned, to be
    cancelled at Telegram after the commit (one renewing subscription per user)."""
    user_id = await _known_user(conn, checkout.user_id, None, "checkout.session.completed")
    if user_id is None:
        return None
    replaced: ReplacedStars | None = None
    stars = await subscriptions_db.renewing(conn, user_id, STARS, now)
    if stars is not None and Tier(stars.tier).rank < checkout.tier.rank:
        await subscriptions_db.set_renews(conn, user_id, STARS, False)
        replaced = ReplacedStars(user_id, stars.external_id)
    await stripe_db.link_customer(conn, user_id, checkout.customer_id)
    await subscriptions_db.upsert(
        conn,
        user_id,
        provider=stripe_db.PROVIDER,
        external_id=checkout.subscription_id,
        tier=checkout.tier.value,
        period_end=subscription.period_end,
    )
    if not subscription.renews:
        await stripe_db.set_state(
            conn,
            user_id,
            subscription_id=checkout.subscription_id,
            tier=checkout.tier.value,
            period_end=subscription.period_end,
            renews=False,
            state_at=event_at,
        )
    if checkout.paid:
        await _extend(conn, user_id, checkout.tier, subscription.period_end, now, None)
    return replaced


async def invoice_paid(conn: Conn, invoice: InvoiceEvent, now: datetime) -> None:
    """Record the payment once and extend the tier to the invoice's period end."""
    user_id = await _known_user(conn, invoice.user_id, invoice.customer_id, "invoice.paid")
    if user_id is None:
        return
    tier = invoice.tier
    if tier is None:
        stored = await subscriptions_db.get(conn, user_id)
        if stored is None or stored.provider != stripe_db.PROVIDER:
            raise BadEvent("invoice without metadata.tier for a user with no Stripe subscription")
        tier = Tier(stored.tier)
    days = max(1, round((invoice.period_end - invoice.period_start).total_seconds() / 86_400))
    payment_id = await payments_db.insert(
        conn,
        payments_db.NewPayment(
            user_id=user_id,
            provider=stripe_db.PROVIDER,
            charge_id=invoice.invoice_id,
            amount=invoice.amount,
            currency=invoice.currency.upper(),
            tier=tier.value,
            period_days=days,
            kind="subscription",
            invoice_payload=invoice.subscription_id,
            is_recurring=True,
            source="webhook",
        ),
    )
    if payment_id is None:
        log.info("stripe invoice already recorded", extra={"invoice": invoice.invoice_id})
        return
    if invoice.customer_id is not None:
        await stripe_db.link_customer(conn, user_id, invoice.customer_id)
    await subscriptions_db.upsert(
        conn,
        user_id,
        provider=stripe_db.PROVIDER,
        external_id=invoice.subscription_id,
        tier=tier.value,
        period_end=invoice.period_end,
    )
    before = await lock_user(conn, user_id)
    after = await _extend(conn, user_id, tier, invoice.period_end, now, payment_id)
    if before is not None and after is not None:
        await payments_db.set_effect(
            conn,
            payment_id,
            tier_before=before.tier,
            expires_before=before.expires_at,
            tier_after=after.tier,
            expires_after=after.expires_at,
        )


async def invoice_failed(conn: Conn, invoice: InvoiceEvent) -> PaymentFailed | None:
    """The user to tell; the tier stays until its expiry."""
    user_id = await _known_user(conn, invoice.user_id, invoice.customer_id, "invoice.payment_failed")
    if user_id is None:
        return None
    stored = await lock_user(conn, user_id)
    assert stored is not None  # _known_user checked the row exists
    return PaymentFailed(user_id, Tier(stored.tier), stored.expires_at)


@dataclass(frozen=True, slots=True)
class CardRefund:
    refunded: Refunded
    cancel_subscription: str | None  # the refunded payment's subscription: cancelled at Stripe


async def charge_refunded(conn: Conn, invoice_id: str, now: datetime) -> CardRefund | None:
    """The card payment of `invoice_id` was refunded in full: by the one refund rule
    (`db.refunds`, `core.entitlements.after_refund`), as a Stars refund, which also ends the
    renewal of the subscription it paid (if that is still the user's: not one that replaced it).
    None when VolSpike has no such payment or it was refunded before (a duplicate)."""
    refunded = await refund_payment(conn, stripe_db.PROVIDER, invoice_id, now, stop_renewal=False)
    if refunded is None:
        return None
    return CardRefund(refunded, await stripe_db.stop_refunded_renewal(conn, invoice_id))


async def subscription_changed(conn: Conn, state: SubscriptionState, event_at: datetime) -> None:
    """Store whether the subscription renews, unless a newer state is stored already."""
    user_id = await _known_user(conn, state.user_id, state.customer_id, "customer.subscription.*")
    if user_id is None:
        return
    tier = state.tier
    if tier is None:
        stored = await subscriptions_db.get(conn, user_id)
        if stored is None:
            raise BadEvent("subscription without metadata.tier that VolSpike does not know")
        tier = Tier(stored.tier)
    await stripe_db.set_state(
        conn,
        user_id,
        subscription_id=state.subscription_id,
        tier=tier.value,
        period_end=state.period_end,
        renews=state.renews,
        state_at=event_at,
    )
