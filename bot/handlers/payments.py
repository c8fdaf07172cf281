"""Stars payments in the chat: `/subscribe` (plans, a monthly subscription link and a 30-day pass
invoice per paid tier), the pre-checkout check, `successful_payment` and `refunded_payment`,
`/paysupport`, `/terms`, and the admin's `/refund <charge_id>`."""

from __future__ import annotations

import logging
from functools import partial

import asyncpg
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    PreCheckoutQuery,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.filters import from_admin
from bot.models import BotUser
from bot.payments.cancel import cancel_stars_subscription
from bot.payments.invoices import invoice_link, send_pass_invoice
from bot.payments.notify import tell_admins, tell_user_by_id
from bot.payments.offers import offer_for, refusal_for, renewing_subscription
from bot.payments.recording import PROVIDER, StarsCharge, record_payment, record_refund
from bot.payments.renewals import cancel_lower_card
from core.clock import Clock, utc_from_ms
from core.entitlements import Offer
from core.errors import BadInput
from core.payment_texts import (
    date_text,
    paid_text,
    refunded_text,
    refusal_text,
    replaced_subscription_text,
    tier_benefits,
)
from core.plans import PAID_TIERS, Kind, check_checkout, parse_payload, price, subscription_allowed
from core.settings import Settings
from core.texts import html_text, tier_name
from core.tiers import Tier
from db import payments as payments_db
from db import subscriptions as subscriptions_db

log = logging.getLogger(__name__)

PASS_PREFIX = "pass:"


def plans_text(
    user: BotUser, settings: Settings, renewing: subscriptions_db.Subscription | None = None
) -> str:
    lines = ["<b>" + _("VolSpike plans") + "</b>", ""]
    lines.append(_("Free: {benefits}").format(benefits=tier_benefits(Tier.FREE)))
    for tier in PAID_TIERS:
        lines.append(
            _("{tier} — {price} ⭐ per 30 days: {benefits}").format(
                tier=tier_name(tier), price=price(settings, tier), benefits=tier_benefits(tier)
            )
        )
    lines.append("")
    if user.tier is Tier.FREE or user.tier_expires_at is None:
        lines.append(_("You have: {tier}").format(tier=tier_name(user.tier)))
    else:
        lines.append(
            _("You have: {tier} until {date}").format(
                tier=tier_name(user.tier), date=date_text(user.tier_expires_at)
            )
        )
    if renewing is not None and renewing.provider == PROVIDER:
        lines.append(
            _("Your {tier} monthly plan renews on {date}; cancel it in /subscription.").format(
                tier=tier_name(Tier(renewing.tier)), date=date_text(renewing.period_end)
            )
        )
    elif renewing is not None:
        lines.append(
            _("Your {tier} card subscription renews on {date}; manage it on the billing page.").format(
                tier=tier_name(Tier(renewing.tier)), date=date_text(renewing.period_end)
            )
        )
    lines.append(_("A monthly plan renews every 30 days until you cancel it; a pass lasts 30 days."))
    lines.append(
        _("A plan you buy never shortens the one you have: only upgrades and extensions are offered.")
    )
    lines.append(_("Payments are in Telegram Stars. Terms: /terms. Help with a payment: /paysupport."))
    return "\n".join(lines)


def terms_text() -> str:
    return _(
        "<b>Terms</b>\n"
        "VolSpike sends market-data alerts for information only; it is not financial advice.\n"
        "A monthly plan is paid in Telegram Stars every 30 days until you cancel it in /subscription; "
        "the plan stays until the end of the period you paid for.\n"
        "A 30-day pass is paid once and does not renew.\n"
        "If the service fails you, write /paysupport: we refund Stars for a period we could not serve.\n"
        "Telegram's own support cannot help with purchases made in this bot."
    )


def mismatch_text(user_id: int, amount: int, currency: str, charge_id: str) -> str:
    return _(
        "A Stars payment does not pay for its plan and granted nothing: user {user_id}, "
        "{amount} {currency}, charge {charge_id}."
    ).format(user_id=user_id, amount=amount, currency=html_text(currency), charge_id=html_text(charge_id))


def unrecorded_text(user_id: int, amount: int, charge_id: str) -> str:
    return _(
        "A Stars payment could not be recorded: user {user_id}, {amount} ⭐, charge {charge_id}."
    ).format(user_id=user_id, amount=amount, charge_id=html_text(charge_id))


async def subscribe(
    message: Message, user: BotUser, bot: Bot, pool: asyncpg.Pool, clock: Clock, settings: Settings
) -> None:
    now = clock.now()
    renewing = await renewing_subscription(pool, user.id, now)
    rows: list[list[InlineKeyboardButton]] = []
    for tier in PAID_TIERS:
        stars = price(settings, tier)
        row: list[InlineKeyboardButton] = []
        monthly = offer_for(user, tier, Kind.SUBSCRIPTION, now, renewing)
        if subscription_allowed(stars) and monthly.on_sale:
            link = await invoice_link(bot, settings, user.id, tier, Kind.SUBSCRIPTION)
            label = (
                _("Change to {tier} monthly — {price} ⭐")
                if monthly is Offer.CHANGE
                else _("{tier} monthly — {price} ⭐")
            )
            row.append(InlineKeyboardButton(text=label.format(tier=tier_name(tier), price=stars), url=link))
        one_off = offer_for(user, tier, Kind.PASS, now, renewing)
        if one_off.on_sale:
            label = (
                _("+30 days of {tier} — {price} ⭐")
                if one_off is Offer.RENEWAL
                else _("{tier} 30 days — {price} ⭐")
            )
            row.append(
                InlineKeyboardButton(
                    text=label.format(tier=tier_name(tier), price=stars),
                    callback_data=f"{PASS_PREFIX}{tier.value}",
                )
            )
        if row:
            rows.append(row)
    await message.answer(
        plans_text(user, settings, renewing),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows) if rows else None,
    )


async def buy_pass(
    query: CallbackQuery, user: BotUser, bot: Bot, pool: asyncpg.Pool, clock: Clock, settings: Settings
) -> None:
    try:
        tier = Tier((query.data or "").removeprefix(PASS_PREFIX))
    except ValueError:
        tier = Tier.FREE
    if tier not in PAID_TIERS:
        await query.answer(_("This plan is not on sale. Send /subscribe to see the current plans."))
        return
    refusal = await refusal_for(pool, user, tier, Kind.PASS, clock.now())
    if refusal is not None:
        await query.answer(refusal_text(refusal), show_alert=True)
        return
    await send_pass_invoice(bot, settings, user.id, user.id, tier)
    await query.answer()


async def pre_checkout(
    query: PreCheckoutQuery, user: BotUser, pool: asyncpg.Pool, clock: Clock, settings: Settings
) -> None:
    refusal = check_checkout(
        settings,
        payload=query.invoice_payload,
        currency=query.currency,
        total_amount=query.total_amount,
        payer_id=query.from_user.id,
        payer_banned=user.banned,
    )
    if refusal is None:
        bought = parse_payload(query.invoice_payload)
        refusal = await refusal_for(pool, user, bought.tier, bought.kind, clock.now())
    if refusal is None:
        await query.answer(ok=True)
        return
    log.info(
        "pre-checkout refused",
        extra={
            "user_id": query.from_user.id,
            "reason": refusal.value,
            "payload": query.invoice_payload[:128],
        },
    )
    await query.answer(ok=False, error_message=refusal_text(refusal))


async def successful_payment(
    message: Message, pool: asyncpg.Pool, clock: Clock, bot: Bot, i18n: I18n, settings: Settings
) -> None:
    payment = message.successful_payment
    assert payment is not None and message.from_user is not None
    expires = payment.subscription_expiration_date
    recorded = await record_payment(
        pool,
        StarsCharge(
            user_id=message.from_user.id,
            charge_id=payment.telegram_payment_charge_id,
            amount=payment.total_amount,
            payload=payment.invoice_payload,
            is_recurring=bool(payment.is_recurring) and not payment.is_first_recurring,
            subscription_expires_at=utc_from_ms(expires * 1000) if expires else None,
            source="update",
            currency=payment.currency,
        ),
        clock.now(),
    )
    if recorded is not None and recorded.mismatch is not None:
        await tell_admins(
            bot,
            i18n,
            pool,
            settings.admin_ids,
            partial(
                mismatch_text,
                message.from_user.id,
                payment.total_amount,
                payment.currency,
                payment.telegram_payment_charge_id,
            ),
        )
    elif recorded is not None:
        text = paid_text(recorded.after.tier, recorded.after.expires_at, recorded.kind)
        if recorded.replaced_subscription is not None:
            await cancel_stars_subscription(bot, recorded.user_id, recorded.replaced_subscription)
            text += "\n" + replaced_subscription_text(recorded.before.tier)
        card = await cancel_lower_card(pool, settings, recorded.user_id, recorded.after.tier, clock.now())
        if card is not None:
            text += "\n" + card
        await message.answer(text)
    elif await payments_db.get_by_charge(pool, PROVIDER, payment.telegram_payment_charge_id) is None:
        # Paid but not ours to record (a payload this bot did not make): a person must look.
        await tell_admins(
            bot,
            i18n,
            pool,
            settings.admin_ids,
            partial(
                unrecorded_text,
                message.from_user.id,
                payment.total_amount,
                payment.telegram_payment_charge_id,
            ),
        )


async def refunded_payment(message: Message, pool: asyncpg.Pool, clock: Clock) -> None:
    refund = message.refunded_payment
    assert refund is not None
    refunded = await record_refund(pool, refund.telegram_payment_charge_id, clock.now())
    if refunded is not None:
        await message.answer(refunded_text(refunded.after.tier, refunded.after.expires_at))


async def terms(message: Message) -> None:
    await message.answer(terms_text())


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(subscribe, Command("subscribe"), F.chat.type == "private")
    router.callback_query.register(buy_pass, F.data.startswith(PASS_PREFIX))
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(successful_payment, F.successful_payment)
    router.message.register(refunded_payment, F.refunded_payment)
    router.message.register(terms, Command("terms"), F.chat.type == "private")
    return router


async def refund(
    message: Message, command: CommandObject, bot: Bot, pool: asyncpg.Pool, clock: Clock, i18n: I18n
) -> None:
    parts = (command.args or "").split()
    if len(parts) != 1 or len(parts[0]) > 256:
        raise BadInput(_("Usage: /refund <charge_id>"))
    charge_id = parts[0]
    stored = await payments_db.get_by_charge(pool, PROVIDER, charge_id)
    if stored is None:
        raise BadInput(_("No Stars payment with charge id {charge_id}.").format(charge_id=charge_id))
    if stored["status"] == "refunded":
        raise BadInput(_("That payment is already refunded."))
    try:
        await bot.refund_star_payment(user_id=stored["user_id"], telegram_payment_charge_id=charge_id)
    except TelegramBadRequest as exc:
        log.warning("refund refused by Telegram", extra={"charge_id": charge_id, "error": exc.message})
        raise BadInput(_("Telegram refused the refund: {error}").format(error=exc.message)) from None
    refunded = await record_refund(pool, charge_id, clock.now())
    after = refunded.after if refunded is not None else None
    await message.answer(
        _("Refunded {amount} ⭐ to user {user_id}; their plan is now {tier}.").format(
            amount=stored["amount"],
            user_id=stored["user_id"],
            tier=tier_name(after.tier) if after is not None else "?",
        )
    )
    if after is not None:
        await tell_user_by_id(
            bot, i18n, pool, stored["user_id"], partial(refunded_text, after.tier, after.expires_at)
        )


def build_admin_router() -> Router:
    """`/refund <charge_id>` for ADMIN_IDS: refundStarPayment, then the refund is recorded."""
    router = Router(name=f"{__name__}.admin")
    router.message.filter(from_admin)
    router.message.register(refund, Command("refund"))
    return router
