"""Payment support that reaches a person (`/paysupport`), as Telegram asks of bots that take
payments.

`/paysupport` lists the user's recent charges and opens a support conversation: the messages the
user sends next (until they press Done, or SUPPORT_WINDOW passes without one) are forwarded to
every admin, after a header naming the user, their plan and their last payments. An admin who
replies to that header or to the forwarded message reaches the user: the reply is sent to them
from the bot. The link between an admin's message and the user lives in Redis
(`RedisNames.support_thread`) for THREAD_TTL.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import asyncpg
from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from redis.asyncio import Redis

from bot.admin_texts import plan_text
from bot.filters import from_admin
from bot.models import BotUser
from bot.payments.notify import language_of, render
from core.clock import Clock
from core.entitlements import Entitlement
from core.payment_texts import date_text
from core.redis_names import RedisNames
from core.settings import Settings
from core.texts import html_text, tier_name
from core.tiers import Tier
from db import payments as payments_db

log = logging.getLogger(__name__)

SUPPORT_WINDOW = timedelta(minutes=30)
THREAD_TTL = 30 * 86_400  # seconds an admin can still answer a support message
RECENT_PAYMENTS = 5
DONE = "support:done"


class Support(StatesGroup):
    open = State()


def charges_lines(rows: list[asyncpg.Record]) -> list[str]:
    """One line per charge: date, plan, amount, status and the charge id support asks for."""
    lines = []
    for row in rows:
        amount = (
            f"{row['amount']} ⭐"
            if row["currency"] == "XTR"
            else f"{row['amount'] / 100:.2f} {row['currency']}"
        )
        status = _("refunded") if row["status"] == "refunded" else _("paid")
        lines.append(
            _("{date}: {tier}, {amount}, {status} — charge <code>{charge_id}</code>").format(
                date=date_text(row["created_at"]),
                tier=tier_name(Tier(row["tier"])),
                amount=amount,
                status=status,
                charge_id=html_text(row["provider_charge_id"]),
            )
        )
    return lines


def paysupport_text(rows: list[asyncpg.Record]) -> str:
    lines = ["<b>" + _("Payment support") + "</b>"]
    if rows:
        lines.append(_("Your recent payments:"))
        lines += charges_lines(rows)
    else:
        lines.append(_("You have no payments with us yet."))
    lines += [
        "",
        _(
            "Write your question now: the messages you send here in the next 30 minutes go to the "
            "VolSpike team, with the payments above. Press Done when you have finished. We answer "
            "here within 24 hours and refund the Stars when we could not deliver what you paid for."
        ),
        _("Telegram support cannot help with purchases made in this bot."),
    ]
    return "\n".join(lines)


def done_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=_("Done"), callback_data=DONE)]])


def header_text(user: BotUser, name: str, rows: list[asyncpg.Record]) -> str:
    lines = [
        _("Support request from user {user_id} ({name}), plan: {plan}.").format(
            user_id=user.id,
            name=html_text(name, limit=64),
            plan=plan_text(Entitlement(user.tier, user.tier_expires_at)),
        )
    ]
    lines += charges_lines(rows) if rows else [_("No payments.")]
    lines.append(_("Reply to this message or to the one below to answer the user."))
    return "\n".join(lines)


async def paysupport(
    message: Message, user: BotUser, pool: asyncpg.Pool, state: FSMContext, clock: Clock
) -> None:
    rows = await payments_db.recent(pool, user.id, RECENT_PAYMENTS)
    await state.set_state(Support.open)
    await state.update_data(support_until=(clock.now() + SUPPORT_WINDOW).isoformat())
    await message.answer(paysupport_text(rows), reply_markup=done_keyboard())


async def done(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)
    await query.answer(_("Thank you. We answer here in this chat."), show_alert=True)


async def forward(
    message: Message,
    user: BotUser,
    pool: asyncpg.Pool,
    state: FSMContext,
    clock: Clock,
    bot: Bot,
    i18n: I18n,
    redis: Redis,
    names: RedisNames,
    settings: Settings,
) -> None:
    now = clock.now()
    until = (await state.get_data()).get("support_until")
    if until is None or datetime.fromisoformat(until) <= now:
        await state.clear()
        raise SkipHandler  # the conversation timed out: the message is an ordinary one
    await state.update_data(support_until=(now + SUPPORT_WINDOW).isoformat())
    rows = await payments_db.recent(pool, user.id, RECENT_PAYMENTS)
    name = message.from_user.full_name if message.from_user else str(user.id)
    reached = 0
    for admin_id in sorted(settings.admin_ids):
        locale = await language_of(pool, admin_id, i18n.default_locale)
        try:
            header = await bot.send_message(
                admin_id, render(i18n, locale, lambda: header_text(user, name, rows))
            )
            copy = await message.copy_to(admin_id)
        except TelegramAPIError as exc:
            log.warning("support message not forwarded", extra={"admin_id": admin_id, "error": str(exc)})
            continue
        for message_id in (header.message_id, copy.message_id):
            await redis.set(names.support_thread(admin_id, message_id), user.id, ex=THREAD_TTL)
        reached += 1
    if reached:
        await message.answer(
            _("Sent to the VolSpike team. Write more, or press Done."), reply_markup=done_keyboard()
        )
    else:
        await message.answer(_("Your message could not reach the team right now. Please try again later."))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(paysupport, Command("paysupport"), F.chat.type == "private")
    router.callback_query.register(done, F.data == DONE)
    router.message.register(forward, Support.open, F.chat.type == "private", ~F.text.startswith("/"))
    return router


async def answer(
    message: Message, bot: Bot, pool: asyncpg.Pool, i18n: I18n, redis: Redis, names: RedisNames
) -> None:
    assert message.reply_to_message is not None
    raw = await redis.get(names.support_thread(message.chat.id, message.reply_to_message.message_id))
    if raw is None:
        raise SkipHandler  # a reply to something else
    user_id = int(raw)
    locale = await language_of(pool, user_id, i18n.default_locale)
    try:
        await bot.send_message(user_id, render(i18n, locale, lambda: "<b>" + _("VolSpike support:") + "</b>"))
        await message.copy_to(user_id)
    except TelegramAPIError as exc:
        log.warning("support answer not sent", extra={"user_id": user_id, "error": str(exc)})
        await message.answer(
            _("The answer did not reach user {user_id}: {error}").format(
                user_id=user_id, error=html_text(exc.message)
            )
        )
        return
    await message.answer(_("Sent to user {user_id}.").format(user_id=user_id))


def build_admin_router() -> Router:
    """An admin's reply to a forwarded support message goes to the user."""
    router = Router(name=f"{__name__}.admin")
    router.message.filter(from_admin, F.chat.type == "private")
    router.message.register(answer, F.reply_to_message, ~F.text.startswith("/"))
    return router
