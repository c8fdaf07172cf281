"""Stars payments in the chat: `/subscribe` (plans, a monthly subscription link and a 30-day pass
invoice per paid tier), the pre-checkout check, `successful_payment` and `refunded_payment`,
`/paysupport`, `/terms`, and the admin's `/refund <charge_id>`."""

from __future__ import annotations

import logging

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
from aiogram.utils.i18n import gettext as _

from bot.models import BotUser
from bot.payments.invoices import invoice_link, send_pass_invoice
from bot.payments.notify import tell_admins
from bot.payments.recording import PROVIDER, StarsCharge, record_payment, record_refund
from core.clock import Clock, utc_from_ms
from core.errors import BadInput
from core.payment_texts import date_text, paid_text, refunded_text, refusal_text, tier_benefits
from core.plans import PAID_TIERS, Kind, check_checkout, price, subscription_allowed
from core.settings import Settings
from core.texts import html_text, tier_name
from core.tiers import Tier
from db import payments as payments_db

log = logging.getLogger(__name__)

PASS_PREFIX = "pass:"


def plans_text(user: BotUser, settings: Settings) -> str:
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
    lines.append(_("A monthly plan renews every 30 days until you cancel it; a pass lasts 30 days."))
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


def paysupport_text() -> str:
    return _(
        "<b>Payment support</b>\n"
        "For any problem with a payment, write to us here in this chat, with the date and the plan "
        "you paid for. We answer within 24 hours and refund the Stars when we could not deliver "
        "what you paid for.\n"
        "Telegram support cannot help with purchases made in this bot."
    )


def build_router(settings: Settings) -> Router:
    router = Router(name=__name__)

    @router.message(Command("subscribe"), F.chat.type == "private")
    async def subscribe(message: Message, user: BotUser, bot: Bot) -> None:
        rows: list[list[InlineKeyboardButton]] = []
        for tier in PAID_TIERS:
            stars = price(settings, tier)
            row: list[InlineKeyboardButton] = []
            if subscription_allowed(stars):
                link = await invoice_link(bot, settings, user.id, tier, Kind.SUBSCRIPTION)
                row.append(
                    InlineKeyboardButton(
                        text=_("{tier} monthly — {price} ⭐").format(tier=tier_name(tier), price=stars),
                        url=link,
                    )
                )
            row.append(
                InlineKeyboardButton(
                    text=_("{tier} 30 days — {price} ⭐").format(tier=tier_name(tier), price=stars),
                    callback_data=f"{PASS_PREFIX}{tier.value}",
                )
            )
            rows.append(row)
        await message.answer(
            plans_text(user, settings), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows)
        )

    @router.callback_query(F.data.startswith(PASS_PREFIX))
    async def buy_pass(query: CallbackQuery, user: BotUser, bot: Bot) -> None:
        try:
            tier = Tier((query.data or "").removeprefix(PASS_PREFIX))
        except ValueError:
            tier = Tier.FREE
        if tier not in PAID_TIERS:
            await query.answer(_("This plan is not on sale. Send /subscribe to see the current plans."))
            return
        await send_pass_invoice(bot, settings, user.id, user.id, tier)
        await query.answer()

    @router.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery, user: BotUser) -> None:
        refusal = check_checkout(
            settings,
            payload=query.invoice_payload,
            currency=query.currency,
            total_amount=query.total_amount,
            payer_id=query.from_user.id,
            payer_banned=user.banned,
        )
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

    @router.message(F.successful_payment)
    async def successful_payment(message: Message, pool: asyncpg.Pool, clock: Clock, bot: Bot) -> None:
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
                settings.admin_ids,
                _(
                    "A Stars payment does not pay for its plan and granted nothing: user {user_id}, "
                    "{amount} {currency}, charge {charge_id}."
                ).format(
                    user_id=message.from_user.id,
                    amount=payment.total_amount,
                    currency=html_text(payment.currency),
                    charge_id=html_text(payment.telegram_payment_charge_id),
                ),
            )
        elif recorded is not None:
            await message.answer(paid_text(recorded.after.tier, recorded.after.expires_at, recorded.kind))
        elif await payments_db.get_by_charge(pool, PROVIDER, payment.telegram_payment_charge_id) is None:
            # Paid but not ours to record (a payload this bot did not make): a person must look.
            await tell_admins(
                bot,
                settings.admin_ids,
                _(
                    "A Stars payment could not be recorded: user {user_id}, {amount} ⭐, charge {charge_id}."
                ).format(
                    user_id=message.from_user.id,
                    amount=payment.total_amount,
                    charge_id=html_text(payment.telegram_payment_charge_id),
                ),
            )

    @router.message(F.refunded_payment)
    async def refunded_payment(message: Message, pool: asyncpg.Pool, clock: Clock) -> None:
        refund = message.refunded_payment
        assert refund is not None
        refunded = await record_refund(pool, refund.telegram_payment_charge_id, clock.now())
        if refunded is not None:
            await message.answer(refunded_text(refunded.after.tier, refunded.after.expires_at))

    @router.message(Command("paysupport"), F.chat.type == "private")
    async def paysupport(message: Message) -> None:
        await message.answer(paysupport_text())

    @router.message(Command("terms"), F.chat.type == "private")
    async def terms(message: Message) -> None:
        await message.answer(terms_text())

    return router


def build_admin_router(settings: Settings) -> Router:
    """`/refund <charge_id>` for ADMIN_IDS: refundStarPayment, then the refund is recorded."""
    router = Router(name=f"{__name__}.admin")
    router.message.filter(F.from_user.id.in_(settings.admin_ids))

    @router.message(Command("refund"))
    async def refund(
        message: Message, command: CommandObject, bot: Bot, pool: asyncpg.Pool, clock: Clock
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

    return router
