"""`/subscription`: the user's plan, until when, whether it renews and through whom, with a button
to cancel or re-enable the renewal of a Stars subscription (`editUserStarSubscription`)."""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.models import BotUser
from bot.payments.recording import PROVIDER
from core.clock import Clock
from core.payment_texts import local_date_text, tier_benefits
from core.texts import tier_name
from core.tiers import Tier
from db import subscriptions as subscriptions_db
from db import user_settings as settings_db

log = logging.getLogger(__name__)

CANCEL = "sub:cancel"
RESUME = "sub:resume"


def subscription_view(
    user: BotUser, subscription: subscriptions_db.Subscription | None, now: datetime, zone: str = "UTC"
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The plan with its dates in the user's time zone `zone` (as /status shows them)."""
    lines = [
        "<b>" + _("Your plan: {tier}").format(tier=tier_name(user.tier)) + "</b>",
        tier_benefits(user.tier),
    ]
    stars = (
        subscription
        if subscription is not None
        and subscription.provider == PROVIDER
        and subscription.tier == user.tier.value
        and subscription.period_end > now
        else None
    )
    button: InlineKeyboardButton | None = None
    if user.tier is Tier.FREE:
        lines.append(_("Upgrade with /subscribe."))
    elif user.tier_expires_at is None:
        lines.append(_("No end date."))
    elif stars is not None and stars.renews:
        lines.append(
            _("Renews on {date} (Telegram Stars).").format(date=local_date_text(user.tier_expires_at, zone))
        )
        button = InlineKeyboardButton(text=_("Cancel renewal"), callback_data=CANCEL)
    else:
        lines.append(
            _("Ends on {date}; it does not renew.").format(date=local_date_text(user.tier_expires_at, zone))
        )
        if stars is not None:
            button = InlineKeyboardButton(text=_("Re-enable renewal"), callback_data=RESUME)
        else:
            lines.append(_("Extend it with /subscribe."))
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[button]]) if button is not None else None
    return "\n".join(lines), keyboard


async def show(message: Message, user: BotUser, pool: asyncpg.Pool, clock: Clock) -> None:
    zone = (await settings_db.get(pool, user.id)).timezone
    text, keyboard = subscription_view(user, await subscriptions_db.get(pool, user.id), clock.now(), zone)
    await message.answer(text, reply_markup=keyboard)


async def toggle(query: CallbackQuery, user: BotUser, pool: asyncpg.Pool, bot: Bot, clock: Clock) -> None:
    cancel = query.data == CANCEL
    subscription = await subscriptions_db.get(pool, user.id)
    if subscription is None or subscription.provider != PROVIDER or subscription.period_end <= clock.now():
        await query.answer(_("You have no Stars subscription."), show_alert=True)
        return
    try:
        await bot.edit_user_star_subscription(
            user_id=user.id, telegram_payment_charge_id=subscription.external_id, is_canceled=cancel
        )
    except TelegramBadRequest as exc:
        log.warning("editUserStarSubscription refused", extra={"user_id": user.id, "error": exc.message})
        await query.answer(_("Telegram did not accept the change. Please try again later."), show_alert=True)
        return
    await subscriptions_db.set_renews(pool, user.id, PROVIDER, not cancel)
    zone = (await settings_db.get(pool, user.id)).timezone
    text, keyboard = subscription_view(user, await subscriptions_db.get(pool, user.id), clock.now(), zone)
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=keyboard)
    await query.answer(_("Renewal cancelled.") if cancel else _("Renewal re-enabled."))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(show, Command("subscription"), F.chat.type == "private")
    router.callback_query.register(toggle, F.data.in_({CANCEL, RESUME}))
    return router
