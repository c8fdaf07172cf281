"""Messages the payment and admin side sends on its own (jobs, reconciliation, grants, bans): to
one user in their language, or to every admin in each admin's language. A failed send is logged
and does not undo what was recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncpg
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n

from db import users as users_db

log = logging.getLogger(__name__)


def render(i18n: I18n, locale: str, text: Callable[[], str]) -> str:
    """`text()` rendered in `locale` (the default locale when it is not one of ours)."""
    with i18n.context(), i18n.use_locale(locale if locale in i18n.available_locales else i18n.default_locale):
        return text()


async def tell_user(bot: Bot, i18n: I18n, user_id: int, locale: str, text: Callable[[], str]) -> bool:
    """Render `text()` in `locale` and send it; False when Telegram refused it."""
    body = render(i18n, locale, text)
    try:
        await bot.send_message(user_id, body)
    except TelegramAPIError as exc:
        log.warning("payment notice not sent", extra={"user_id": user_id, "error": str(exc)})
        return False
    return True


async def language_of(pool: asyncpg.Pool, user_id: int, default: str) -> str:
    row = await users_db.get(pool, user_id)
    return str(row["language"]) if row is not None else default


async def tell_user_by_id(
    bot: Bot, i18n: I18n, pool: asyncpg.Pool, user_id: int, text: Callable[[], str]
) -> bool:
    """`tell_user` in the language the user chose."""
    locale = await language_of(pool, user_id, i18n.default_locale)
    return await tell_user(bot, i18n, user_id, locale, text)


async def tell_admins(
    bot: Bot, i18n: I18n, pool: asyncpg.Pool, admin_ids: frozenset[int], text: Callable[[], str]
) -> None:
    """`text()` to every admin, each in their own language."""
    for admin_id in sorted(admin_ids):
        body = render(i18n, await language_of(pool, admin_id, i18n.default_locale), text)
        try:
            await bot.send_message(admin_id, body)
        except TelegramAPIError as exc:
            log.warning("admin notice not sent", extra={"admin_id": admin_id, "error": str(exc)})
