"""Per-update middlewares, registered on the Dispatcher's update observer in this order:
throttling (Redis only, so a flood never reaches the database) → user (load or create) →
i18n (the user's language) → ban check; then, for messages, commands (`/WATCH` is `/watch`, and a
command ends a typed-input prompt)."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.utils.i18n import I18n

from bot.middlewares.ban import BanMiddleware
from bot.middlewares.commands import CommandMiddleware
from bot.middlewares.i18n import UserI18nMiddleware
from bot.middlewares.throttle import ThrottleMiddleware
from bot.middlewares.users import UserMiddleware


def setup_middlewares(dp: Dispatcher, i18n: I18n) -> None:
    dp.update.outer_middleware(ThrottleMiddleware(i18n))
    dp.update.outer_middleware(UserMiddleware())
    dp.update.outer_middleware(UserI18nMiddleware(i18n))
    dp.update.outer_middleware(BanMiddleware())
    dp.message.outer_middleware(CommandMiddleware())


__all__ = [
    "BanMiddleware",
    "CommandMiddleware",
    "ThrottleMiddleware",
    "UserI18nMiddleware",
    "UserMiddleware",
    "setup_middlewares",
]
