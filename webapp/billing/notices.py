"""Messages the webapp sends a user in the bot about their Stripe billing.

A failed renewal payment and a refund (the plan after it) are told. Sent after the event's
transaction commits, with the webapp's Bot (`webapp.keys.INVOICE_BOT`, present when
BOT_TOKEN is set). A send that fails is logged: Stripe also emails the customer about a failed
payment, and the event must not be retried for a message."""

from __future__ import annotations

import logging

import stripe
from aiogram.exceptions import TelegramAPIError
from aiohttp import web

from core.payment_texts import card_payment_failed_text, refunded_text
from db import stripe as stripe_db
from db.refunds import Refunded
from webapp import keys
from webapp.billing.client import STRIPE
from webapp.billing.ledger import PaymentFailed, ReplacedStars
from webapp.keys import INVOICE_BOT, INVOICE_I18N

log = logging.getLogger(__name__)


async def tell_payment_failed(app: web.Application, failed: PaymentFailed) -> None:
    bot = app.get(INVOICE_BOT)
    if bot is None:
        log.warning(
            "payment failed, but the bot is off: the user is not told", extra={"user_id": failed.user_id}
        )
        return
    language = await stripe_db.language_of(app[keys.POOL], failed.user_id)
    i18n = app[INVOICE_I18N]
    with i18n.context(), i18n.use_locale(language or "en"):
        text = card_payment_failed_text(failed.tier, failed.expires_at)
    try:
        await bot.send_message(failed.user_id, text)
    except TelegramAPIError as exc:
        log.warning(
            "could not tell a user their payment failed", extra={"user_id": failed.user_id, "error": str(exc)}
        )


async def tell_refunded(app: web.Application, refunded: Refunded) -> None:
    """Tell the user in their language what their plan is after a card refund (the text a Stars
    refund gets)."""
    bot = app.get(INVOICE_BOT)
    if bot is None:
        log.warning(
            "card refund recorded, but the bot is off: the user is not told",
            extra={"user_id": refunded.user_id},
        )
        return
    language = await stripe_db.language_of(app[keys.POOL], refunded.user_id)
    i18n = app[INVOICE_I18N]
    with i18n.context(), i18n.use_locale(language or "en"):
        text = refunded_text(refunded.after.tier, refunded.after.expires_at)
    try:
        await bot.send_message(refunded.user_id, text)
    except TelegramAPIError as exc:
        log.warning(
            "could not tell a user about their refund", extra={"user_id": refunded.user_id, "error": str(exc)}
        )


async def cancel_replaced_stars(app: web.Application, replaced: ReplacedStars) -> None:
    """Cancel at Telegram the Stars subscription a higher card subscription replaced."""
    bot = app.get(INVOICE_BOT)
    if bot is None:
        log.warning(
            "a card subscription replaced a Stars one, but the bot is off: it still renews at Telegram",
            extra={"user_id": replaced.user_id, "charge_id": replaced.charge_id},
        )
        return
    try:
        await bot.edit_user_star_subscription(
            user_id=replaced.user_id, telegram_payment_charge_id=replaced.charge_id, is_canceled=True
        )
    except TelegramAPIError as exc:
        log.warning(
            "the replaced stars subscription was not cancelled",
            extra={"user_id": replaced.user_id, "charge_id": replaced.charge_id, "error": str(exc)},
        )


async def cancel_refunded_subscription(app: web.Application, user_id: int, subscription_id: str) -> None:
    """Cancel at Stripe, at once, the subscription whose payment was refunded, so the customer is
    not charged again for a plan they were refunded. Stripe then sends
    `customer.subscription.deleted`. A refusal (already cancelled, Stripe down) is logged: the
    refund stands, and the operator cancels it in the dashboard."""
    client = app.get(STRIPE)
    if client is None:
        return
    try:
        await client.v1.subscriptions.cancel_async(subscription_id)
    except stripe.StripeError as exc:
        log.warning(
            "the refunded card subscription was not cancelled at Stripe: cancel it in the dashboard",
            extra={"user_id": user_id, "subscription": subscription_id, "error": str(exc)},
        )
        return
    log.info(
        "refunded card subscription cancelled", extra={"user_id": user_id, "subscription": subscription_id}
    )
