"""The locale of an update: the user's saved language, else Telegram's language_code."""

from __future__ import annotations

from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18nMiddleware

from bot.models import BotUser
from core.i18n import SUPPORTED_LOCALES, pick_locale


class UserI18nMiddleware(I18nMiddleware):
    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user: BotUser | None = data.get("user")
        if user is not None and user.language in SUPPORTED_LOCALES:
            return user.language
        sender: User | None = data.get("event_from_user")
        return pick_locale(sender.language_code if sender else None)
