"""`/language`: pick en/ru/es/tr/uk; saved on the user and used for every later message and alert."""

from __future__ import annotations

import asyncpg
from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import (
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.menu import bot_commands
from bot.models import BotUser
from core.i18n import LANGUAGE_NAMES, SUPPORTED_LOCALES
from db import users as users_db


def language_keyboard(current: str) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                text=("✅ " if code == current else "") + LANGUAGE_NAMES[code], callback_data=f"lang:{code}"
            )
        ]
        for code in SUPPORTED_LOCALES
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def choose(message: Message, user: BotUser) -> None:
    await message.answer(_("Choose your language:"), reply_markup=language_keyboard(user.language))


async def chosen(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, i18n: I18n) -> None:
    code = (callback.data or "").removeprefix("lang:")
    if code not in SUPPORTED_LOCALES:
        await callback.answer(_("That value is not available."), show_alert=True)
        return
    await users_db.set_language(pool, user.id, code)
    if callback.bot is not None:
        # The command menu follows the chosen language in this chat, whatever Telegram's is.
        await callback.bot.set_my_commands(
            bot_commands(i18n, code), scope=BotCommandScopeChat(chat_id=user.id)
        )
    with i18n.use_locale(code):
        text = _("Language set to English.")
        if isinstance(callback.message, Message):
            try:
                await callback.message.edit_text(text, reply_markup=language_keyboard(code))
            except TelegramBadRequest as exc:
                if "not modified" not in exc.message:
                    raise
        await callback.answer(text)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")
    router.message.register(choose, Command("language"))
    router.callback_query.register(chosen, F.data.startswith("lang:"))
    return router
