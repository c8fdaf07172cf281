"""POST /webhooks/stripe: Stripe's events, verified and applied exactly once.

The `Stripe-Signature` header is checked by the stripe library on the raw body with
STRIPE_WEBHOOK_SECRET (a missing, bad or stale signature, or a body that is not JSON: 400 and
nothing changes). The library refuses only a signed timestamp too far in the past; one more
than TOLERANCE ahead of now (the same wall clock the library reads) is refused here, as is an
event id over 255 characters or a `created` outside 2010-2100. The event id is stored in the
transaction that applies the event, so a redelivered event answers 200 and changes nothing.
A checkout fetches its subscription from Stripe first, for the period it paid. Unknown event
types and events VolSpike cannot use (an unknown Telegram user, a missing field, a value out of
range: `webapp.billing.events`) are logged and answered 200: Stripe retrying them cannot help.
A failed renewal payment is told to the user in the bot after the commit; a Stars subscription
of a lower tier that a card checkout replaces is cancelled at Telegram after it.
A full refund (`charge.refunded` whose charge is `refunded`) of a subscription invoice's payment
(the invoice found through Stripe's invoice payments by the charge's payment intent) goes through
the one refund rule (`db.refunds`, as a Stars refund and /refund do) and is told to the user in
their language; like a Stars refund it ends the renewal: the subscription it paid, if still the
user's, is cancelled at Stripe after the commit. A partial refund is logged and leaves the plan;
a refund of a payment VolSpike never recorded, or recorded as refunded already, changes nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import stripe
from aiohttp import web

from core.errors import BadInput, NotFound
from db import stripe as stripe_db
from webapp import keys
from webapp.billing import events, ledger
from webapp.billing.client import STRIPE
from webapp.billing.notices import (
    cancel_refunded_subscription,
    cancel_replaced_stars,
    tell_payment_failed,
    tell_refunded,
)

log = logging.getLogger(__name__)

PATH = "/webhooks/stripe"
TOLERANCE = 300  # seconds: Stripe's default; an older signed timestamp is refused
HANDLED = (
    "checkout.session.completed",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "charge.refunded",
)


def _signed_at(header: str) -> int | None:
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def verified_event(body: bytes, header: str | None, secret: str) -> dict[str, Any]:
    """The event as plain JSON once its signature holds; BadInput otherwise."""
    if not header:
        raise BadInput("missing Stripe-Signature header")
    signed_at = _signed_at(header)
    if signed_at is not None and signed_at > time.time() + TOLERANCE:
        raise BadInput("Stripe-Signature timestamp is in the future")
    try:
        # The library's check (HMAC-SHA256 of `t.body`, constant-time, 300 s tolerance); the body is
        # parsed here, as the library's own parser fails on JSON that is not an object.
        stripe.WebhookSignature.verify_header(body.decode(), header, secret, TOLERANCE)
        event = orjson.loads(body)
    except stripe.SignatureVerificationError as exc:
        raise BadInput(f"Stripe-Signature does not verify: {exc.user_message or exc}") from None
    except (ValueError, UnicodeDecodeError):  # the library and orjson both refuse non-JSON this way
        raise BadInput("body is not a JSON event") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or "type" not in event:
        raise BadInput("body is not a Stripe event")
    if not 0 < len(event["id"]) <= events.MAX_ID:
        raise BadInput("event id out of range")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise BadInput("event without data.object")
    if not events.plausible_ts(event.get("created")):
        raise BadInput("event without a created timestamp in 2010-2100")
    return event


async def _fetched_subscription(request: web.Request, subscription_id: str) -> events.SubscriptionState:
    client = request.app.get(STRIPE)
    if client is None:
        raise NotFound("Stripe is off (STRIPE_SECRET_KEY is not set)")
    try:
        fetched = await client.v1.subscriptions.retrieve_async(subscription_id)
    except stripe.StripeError as exc:
        log.warning(
            "could not fetch a subscription", extra={"subscription": subscription_id, "error": str(exc)}
        )
        raise web.HTTPBadGateway(reason="Stripe did not answer; it retries the event") from None
    return events.subscription(fetched.to_dict())


async def _invoice_of(request: web.Request, payment_intent: str) -> str:
    """The invoice a payment intent paid (Stripe's invoice payments); BadEvent if none."""
    client = request.app.get(STRIPE)
    if client is None:
        raise NotFound("Stripe is off (STRIPE_SECRET_KEY is not set)")
    try:
        found = await client.v1.invoice_payments.list_async(
            params={"payment": {"type": "payment_intent", "payment_intent": payment_intent}, "limit": 1}
        )
    except stripe.StripeError as exc:
        log.warning(
            "could not look up a payment's invoice",
            extra={"payment_intent": payment_intent, "error": str(exc)},
        )
        raise web.HTTPBadGateway(reason="Stripe did not answer; it retries the event") from None
    if not found.data:
        raise events.BadEvent(f"payment intent {payment_intent[:60]} paid no invoice")
    invoice = found.data[0].to_dict().get("invoice")
    if isinstance(invoice, dict):
        invoice = invoice.get("id")
    if not isinstance(invoice, str) or not 0 < len(invoice) <= events.MAX_ID:
        raise events.BadEvent("invoice payment without an invoice id")
    return invoice


async def stripe_webhook(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    if settings.stripe_webhook_secret is None:
        raise NotFound("Stripe is off (STRIPE_WEBHOOK_SECRET is not set)")
    body = await request.read()
    event = verified_event(
        body, request.headers.get("Stripe-Signature"), settings.stripe_webhook_secret.get_secret_value()
    )
    event_id, kind = event["id"], str(event["type"])
    if kind not in HANDLED:
        log.info("stripe event type not handled", extra={"event_id": event_id, "type": kind})
        return web.json_response({"received": True, "handled": False})
    obj: dict[str, Any] = event["data"]["object"]
    event_at = datetime.fromtimestamp(event["created"], UTC)
    now = request.app[keys.CLOCK].now()
    failed: ledger.PaymentFailed | None = None
    replaced: ledger.ReplacedStars | None = None
    refunded: ledger.CardRefund | None = None
    try:
        fetched = None
        invoice = subscription = None
        refunded_invoice: str | None = None
        if kind == "charge.refunded":
            charge = events.charge_refunded(obj)
            if not charge.full:
                log.info(
                    "partial card refund: the plan stays",
                    extra={
                        "event_id": event_id,
                        "charge": charge.charge_id,
                        "refunded": charge.amount_refunded,
                    },
                )
            else:
                refunded_invoice = await _invoice_of(request, charge.payment_intent)
        elif kind == "checkout.session.completed":
            checkout = events.checkout_completed(obj)
            fetched = await _fetched_subscription(request, checkout.subscription_id)
            events.check_period(fetched.period_end, now)
        elif kind in ("invoice.paid", "invoice.payment_failed"):
            invoice = events.invoice(obj)
            events.check_period(invoice.period_end, now)
        else:
            subscription = events.subscription(obj, deleted=kind == "customer.subscription.deleted")
            events.check_period(subscription.period_end, now)
        async with request.app[keys.POOL].acquire() as conn, conn.transaction():
            if not await stripe_db.record_event(conn, event_id, kind):
                log.info("stripe event already applied", extra={"event_id": event_id, "type": kind})
                return web.json_response({"received": True, "handled": True})
            if kind == "charge.refunded":
                if refunded_invoice is not None:
                    refunded = await ledger.charge_refunded(conn, refunded_invoice, now)
            elif kind == "checkout.session.completed":
                assert fetched is not None
                replaced = await ledger.checkout_completed(
                    conn, checkout, fetched, now=now, event_at=event_at
                )
            elif kind == "invoice.paid":
                assert invoice is not None
                await ledger.invoice_paid(conn, invoice, now)
            elif kind == "invoice.payment_failed":
                assert invoice is not None
                failed = await ledger.invoice_failed(conn, invoice)
            else:
                assert subscription is not None
                await ledger.subscription_changed(conn, subscription, event_at)
    except events.BadEvent as exc:
        log.warning("stripe event not usable", extra={"event_id": event_id, "type": kind, "error": str(exc)})
        return web.json_response({"received": True, "handled": False})
    if failed is not None:
        await tell_payment_failed(request.app, failed)
    if replaced is not None:
        await cancel_replaced_stars(request.app, replaced)
    if refunded is not None:
        await tell_refunded(request.app, refunded.refunded)
        if refunded.cancel_subscription is not None:
            await cancel_refunded_subscription(
                request.app, refunded.refunded.user_id, refunded.cancel_subscription
            )
    return web.json_response({"received": True, "handled": True})
