"""Stripe webhook payloads turned into typed records before any logic runs.

Shapes are Stripe's current API: a Checkout Session names the user in `client_reference_id` and
the plan in `metadata`; an invoice's subscription is `parent.subscription_details.subscription`
(with the subscription's `metadata` snapshot beside it) and the paid period is
`lines.data[].period`; a subscription's period end is `items.data[].current_period_end`.
A payload without what a record needs, or with values no real Stripe event has (a timestamp
outside 2010-2100, an id over 255 characters, a user id outside Telegram's range, an amount
over `MAX_AMOUNT`, a period ending more than `MAX_AHEAD` after now: `check_period`), raises
`BadEvent`: signed by Stripe or not, it grants nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.telegram_ids import is_user_id
from core.tiers import Tier

PAID = (Tier.PRO, Tier.ELITE)
EARLIEST_TS = 1_262_304_000  # 2010-01-01: before Stripe's API had subscriptions
LATEST_TS = 4_102_444_800  # 2100-01-01
MAX_ID = 255  # Stripe's ids are far shorter
MAX_AMOUNT = 10**10  # minor units: $100M on one invoice
MAX_AHEAD = timedelta(days=400)  # a yearly plan's period, with room


class BadEvent(ValueError):
    """The event lacks a field VolSpike needs (logged, answered 200: Stripe cannot fix it by retrying)."""


@dataclass(frozen=True, slots=True)
class CheckoutCompleted:
    user_id: int
    tier: Tier
    customer_id: str
    subscription_id: str
    paid: bool


@dataclass(frozen=True, slots=True)
class InvoiceEvent:
    invoice_id: str
    user_id: int | None  # from the subscription metadata; None: look the customer up
    customer_id: str | None
    subscription_id: str
    tier: Tier | None
    period_end: datetime
    period_start: datetime
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    subscription_id: str
    user_id: int | None
    customer_id: str | None
    tier: Tier | None
    period_end: datetime
    renews: bool


def plausible_ts(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and EARLIEST_TS <= value < LATEST_TS


def _ts(value: object) -> datetime:
    if not isinstance(value, int) or not plausible_ts(value):
        raise BadEvent(f"expected a Unix timestamp in 2010-2100, got {value!r}"[:200])
    return datetime.fromtimestamp(value, UTC)


def check_period(period_end: datetime, now: datetime) -> None:
    """A paid period cannot end more than MAX_AHEAD from now."""
    if period_end > now + MAX_AHEAD:
        raise BadEvent(f"period ends {period_end.isoformat()}, more than {MAX_AHEAD.days} days ahead")


def _user_id(value: object) -> int | None:
    if value is None:
        return None
    try:
        user_id = int(str(value)[:30])
    except ValueError:
        raise BadEvent(f"not a Telegram user id: {value!r}"[:200]) from None
    if not is_user_id(user_id):
        raise BadEvent(f"not a Telegram user id: {value!r}"[:200])
    return user_id


def _tier(value: object) -> Tier | None:
    if value is None:
        return None
    try:
        tier = Tier(str(value))
    except ValueError:
        raise BadEvent(f"not a paid tier: {value!r}") from None
    if tier not in PAID:
        raise BadEvent(f"not a paid tier: {value!r}")
    return tier


def _id(value: object, what: str) -> str:
    """An expandable field: an id string, or the expanded object carrying `id`."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise BadEvent(f"missing {what}")
    if len(value) > MAX_ID:
        raise BadEvent(f"{what} is {len(value)} characters long")
    return value


def _optional_id(value: object) -> str | None:
    return None if value is None else _id(value, "id")


def _metadata(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def checkout_completed(obj: dict[str, Any]) -> CheckoutCompleted:
    """`checkout.session.completed`: the data object is a Checkout Session in subscription mode."""
    if obj.get("mode") != "subscription":
        raise BadEvent(f"checkout session mode {obj.get('mode')!r}, expected subscription")
    meta = _metadata(obj.get("metadata"))
    user_id = _user_id(obj.get("client_reference_id") or meta.get("telegram_user_id"))
    tier = _tier(meta.get("tier"))
    if user_id is None or tier is None:
        raise BadEvent("checkout session without client_reference_id or metadata.tier")
    return CheckoutCompleted(
        user_id=user_id,
        tier=tier,
        customer_id=_id(obj.get("customer"), "customer"),
        subscription_id=_id(obj.get("subscription"), "subscription"),
        paid=obj.get("payment_status") in ("paid", "no_payment_required"),
    )


def invoice(obj: dict[str, Any]) -> InvoiceEvent:
    """`invoice.paid` / `invoice.payment_failed` of a subscription invoice."""
    parent = _metadata(obj.get("parent"))
    details = _metadata(parent.get("subscription_details"))
    subscription_id = _id(details.get("subscription"), "parent.subscription_details.subscription")
    meta = _metadata(details.get("metadata"))
    lines = _metadata(obj.get("lines")).get("data")
    periods = [_metadata(line.get("period")) for line in lines or [] if isinstance(line, dict)]
    if not periods:
        raise BadEvent("invoice without lines.data[].period")
    amount = obj.get("amount_paid") if obj.get("status") == "paid" else obj.get("amount_due")
    if amount is not None and not (isinstance(amount, int) and 0 <= amount <= MAX_AMOUNT):
        raise BadEvent(f"invoice amount {amount!r} is not whole minor units in range"[:200])
    currency = str(obj.get("currency") or "usd")
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise BadEvent(f"not a currency code: {currency[:20]!r}")
    start = min(_ts(p.get("start")) for p in periods)
    end = max(_ts(p.get("end")) for p in periods)
    if end <= start:
        raise BadEvent("invoice period ends before it starts")
    return InvoiceEvent(
        invoice_id=_id(obj.get("id"), "invoice id"),
        user_id=_user_id(meta.get("telegram_user_id")),
        customer_id=_optional_id(obj.get("customer")),
        subscription_id=subscription_id,
        tier=_tier(meta.get("tier")),
        period_end=end,
        period_start=start,
        amount=amount if isinstance(amount, int) else 0,
        currency=currency,
    )


@dataclass(frozen=True, slots=True)
class ChargeRefunded:
    charge_id: str
    payment_intent: str
    full: bool  # the whole charge is refunded (`refunded`); a partial refund leaves the plan
    amount: int
    amount_refunded: int


def charge_refunded(obj: dict[str, Any]) -> ChargeRefunded:
    """`charge.refunded` (also sent for a partial refund): the data object is a Charge; its
    invoice is found through its `payment_intent` (the current API's Charge has no `invoice`)."""
    if obj.get("object") != "charge":
        raise BadEvent(f"charge.refunded about a {str(obj.get('object'))[:40]!r}, not a charge")
    amounts = (obj.get("amount"), obj.get("amount_refunded"))
    for value in amounts:
        if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_AMOUNT):
            raise BadEvent(f"charge amount {value!r} is not whole minor units in range"[:200])
    amount, refunded = amounts
    assert isinstance(amount, int) and isinstance(refunded, int)
    if refunded > amount:
        raise BadEvent("charge refunds more than it charged")
    return ChargeRefunded(
        charge_id=_id(obj.get("id"), "charge id"),
        payment_intent=_id(obj.get("payment_intent"), "payment_intent"),
        full=obj.get("refunded") is True and refunded == amount,
        amount=amount,
        amount_refunded=refunded,
    )


def subscription(obj: dict[str, Any], *, deleted: bool = False) -> SubscriptionState:
    """`customer.subscription.updated` / `.deleted` (and a fetched Subscription object)."""
    meta = _metadata(obj.get("metadata"))
    items = _metadata(obj.get("items")).get("data") or []
    ends = [_ts(item.get("current_period_end")) for item in items if isinstance(item, dict)]
    if not ends:
        raise BadEvent("subscription without items.data[].current_period_end")
    active = obj.get("status") in ("active", "trialing")
    return SubscriptionState(
        subscription_id=_id(obj.get("id"), "subscription id"),
        user_id=_user_id(meta.get("telegram_user_id")),
        customer_id=_optional_id(obj.get("customer")),
        tier=_tier(meta.get("tier")),
        period_end=max(ends),
        renews=not deleted and active and not obj.get("cancel_at_period_end"),
    )
