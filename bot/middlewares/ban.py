"""Banned users: every message or button press gets one short localized notice, nothing else runs.

(Throttling runs before this, so a banned user who floods gets at most a few notices.)
Other update kinds from a banned user are dropped silently, except payment updates
(`bot.payments.updates`), which their handlers answer or record, and payment support
(`/paysupport` and the conversation it opens): Telegram asks that payment disputes reach a person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, Update
from aiogram.utils.i18n import gettext as _

from bot.handlers.support import DONE, Support
from bot.models import BotUser
from bot.payments.updates import is_payment_update


def _support(event: TelegramObject, data: dict[str, Any]) -> bool:
    """A banned user's way to payment support: /paysupport, the messages of the conversation it
    opened, and its Done button."""
    if not isinstance(event, Update):
        return False
    if event.callback_query is not None:
        return event.callback_query.data == DONE
    message = event.message
    if message is None or message.chat.type != "private":
        return False
    return (message.text or "").startswith("/paysupport") or data.get("raw_state") == Support.open.state


class BanMiddleware(BaseMiddleware):
    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: BotUser | None = data.get("user")
        if user is None or not user.banned or is_payment_update(event) or _support(event, data):
            return await handler(event, data)
        notice = _("Your access to VolSpike has been suspended.")
        if isinstance(event, Update):
            if isinstance(event.message, Message) and event.message.chat.type == "private":
                await event.message.answer(notice)
            elif isinstance(event.callback_query, CallbackQuery):
                await event.callback_query.answer(notice, show_alert=True)
        return None
