"""Messages the payment side sends on its own (jobs, reconciliation): to one user in their
language, or to every admin. A failed send is logged and does not undo what was recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n

log = logging.getLogger(__name__)


async def tell_user(bot: Bot, i18n: I18n, user_id: int, locale: str, text: Callable[[], str]) -> bool:
    """Render `text()` in `locale` and send it; False when Telegram refused it."""
    with i18n.context(), i18n.use_locale(locale if locale in i18n.available_locales else i18n.default_locale):
        body = text()
    try:
        await bot.send_message(user_id, body)
    except TelegramAPIError as exc:
        log.warning("payment notice not sent", extra={"user_id": user_id, "error": str(exc)})
        return False
    return True


async def tell_admins(bot: Bot, admin_ids: frozenset[int], text: str) -> None:
    for admin_id in sorted(admin_ids):
        try:
            await bot.send_message(admin_id, text)
        except TelegramAPIError as exc:
            log.warning("admin notice not sent", extra={"admin_id": admin_id, "error": str(exc)})
