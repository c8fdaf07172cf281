"""Mutes: the "Mute <asset> 24 h" button under an alert toggles (a second press lifts the mute and
the button says which way it goes next), and `/mutes` lists the running mutes, each with an
Unmute button.

Callback data can be forged or outlive its symbol: a mute is honoured only for a symbol the
universe holds, by the bot's one symbol rule (`core.symbols`); lifting one needs only that the
user has it."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from zoneinfo import ZoneInfo

import asyncpg
from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.alert_message import MUTE_PREFIX
from bot.models import BotUser
from core.clock import Clock
from core.symbols import symbol_callback, symbol_from_callback
from core.texts import html_text
from core.timezones import display_timezone
from db import mutes as mutes_db
from db import symbols as symbols_db
from db import user_settings as settings_db

MUTE_FOR = timedelta(hours=24)
UNMUTE_PREFIX = "unmute:"


def mute_label(asset: str, muted: bool) -> str:
    if muted:
        return "🔇 " + _("Unmute {asset}").format(asset=asset)
    return _("Mute {asset} 24 h").format(asset=asset)


def toggled_keyboard(
    markup: InlineKeyboardMarkup | None, data: str, label: str
) -> InlineKeyboardMarkup | None:
    """The alert's keyboard with the pressed mute button relabelled; None when it has none."""
    if markup is None:
        return None
    rows = [
        [
            button.model_copy(update={"text": label}) if button.callback_data == data else button
            for button in row
        ]
        for row in markup.inline_keyboard
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def mutes_screen(
    pool: asyncpg.Pool, user: BotUser, clock: Clock
) -> tuple[str, InlineKeyboardMarkup | None]:
    rows = await mutes_db.active(pool, user.id, clock.now())
    if not rows:
        return _(
            "You have no muted symbols. The Mute button under an alert silences a symbol for 24 hours."
        ), None
    zone = (await settings_db.get(pool, user.id)).timezone
    lines = [_("Muted symbols (times in {zone}):").format(zone=display_timezone(zone))]
    buttons = []
    for row in rows:
        local = row["until"].astimezone(ZoneInfo(zone))
        until = f"{local:%m-%d %H:%M}"
        lines.append(
            _("{symbol} until {until}").format(symbol=f"<b>{html_text(row['symbol'])}</b>", until=until)
        )
        data = symbol_callback(UNMUTE_PREFIX, row["symbol"])
        if data is not None:
            label = _("Unmute {asset}").format(asset=row["asset"])
            buttons.append([InlineKeyboardButton(text=label, callback_data=data)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=buttons) if buttons else None


async def toggle_mute(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, clock: Clock) -> None:
    symbol = symbol_from_callback(MUTE_PREFIX, callback.data)
    if symbol is None:
        await callback.answer(_("That button has expired."), show_alert=True)
        return
    now = clock.now()
    if await mutes_db.unmute(pool, user.id, symbol, now):
        muted = False
        note = _("{symbol} unmuted: its alerts come again.").format(symbol=symbol)
    elif await symbols_db.is_known(pool, symbol):
        await mutes_db.mute(pool, user.id, symbol, now + MUTE_FOR)
        muted = True
        note = _("{symbol} muted for 24 hours. /mutes lists your mutes.").format(symbol=symbol)
    else:
        await callback.answer(_("That button has expired."), show_alert=True)
        return
    message = callback.message
    if isinstance(message, Message):
        asset = await symbols_db.asset_of(pool, symbol) or symbol
        markup = toggled_keyboard(message.reply_markup, callback.data or "", mute_label(asset, muted))
        if markup is not None:
            # An alert too old to edit keeps its label: the answer still says what happened.
            with contextlib.suppress(TelegramBadRequest):
                await message.edit_reply_markup(reply_markup=markup)
    await callback.answer(note)


async def list_mutes(message: Message, user: BotUser, pool: asyncpg.Pool, clock: Clock) -> None:
    text, keyboard = await mutes_screen(pool, user, clock)
    await message.answer(text, reply_markup=keyboard)


async def lift_mute(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, clock: Clock) -> None:
    symbol = symbol_from_callback(UNMUTE_PREFIX, callback.data)
    lifted = symbol is not None and await mutes_db.unmute(pool, user.id, symbol, clock.now())
    text, keyboard = await mutes_screen(pool, user, clock)
    if isinstance(callback.message, Message):
        with contextlib.suppress(TelegramBadRequest):  # unchanged, or too old to edit
            await callback.message.edit_text(text, reply_markup=keyboard)
    if lifted:
        await callback.answer(_("{symbol} unmuted: its alerts come again.").format(symbol=symbol))
    else:
        await callback.answer(_("That mute has already ended."), show_alert=True)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(list_mutes, Command("mutes"), F.chat.type == "private")
    router.callback_query.register(toggle_mute, F.data.startswith(MUTE_PREFIX))
    router.callback_query.register(lift_mute, F.data.startswith(UNMUTE_PREFIX))
    return router
