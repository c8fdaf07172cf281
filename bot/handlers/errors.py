"""The error handler (any unexpected exception: logged with context, the user gets a localized
"something went wrong", the bot keeps running) and the unknown-command fallback.

Bad input raised as `core.errors.AppError` is answered with its own (already localized) detail,
as text: a detail such as "Usage: /revoke <user_id>" is escaped for the HTML parse mode.
"""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, ErrorEvent, Message, Update
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.models import BotUser
from core.errors import AppError
from core.i18n import DEFAULT_LOCALE, N_
from core.texts import html_text

log = logging.getLogger(__name__)

SOMETHING_WENT_WRONG = N_("Sorry, something went wrong. Please try again in a moment.")


def _describe(update: Update, user: BotUser | None) -> dict[str, object]:
    """Ids only: what users typed (message text, callback data) is theirs and never logged."""
    context: dict[str, object] = {"update_id": update.update_id, "event": update.event_type}
    if user is not None:
        context["user_id"] = user.id
    elif update.callback_query is not None:
        context["user_id"] = update.callback_query.from_user.id
    elif update.message is not None and update.message.from_user is not None:
        context["user_id"] = update.message.from_user.id
    if update.message is not None:
        context["chat_id"] = update.message.chat.id
    return context


async def on_error(event: ErrorEvent, i18n: I18n, user: BotUser | None = None) -> bool:
    exc = event.exception
    locale = user.language if user is not None else DEFAULT_LOCALE
    if isinstance(exc, AppError) and isinstance(exc.detail, str):
        text = exc.detail
    else:
        log.error("handler failed", extra=_describe(event.update, user), exc_info=exc)
        text = i18n.gettext(SOMETHING_WENT_WRONG, locale=locale)
    try:
        if event.update.message is not None:
            # In a group too: there only admins' commands (/connect, /disconnect) get this far.
            await event.update.message.answer(html_text(text))
        elif event.update.callback_query is not None:
            await event.update.callback_query.answer(text, show_alert=True)
    except TelegramAPIError as reply_error:
        log.warning("error reply not sent", extra={"error": str(reply_error)})
    return True


def build_router() -> Router:
    router = Router(name=__name__)
    router.error.register(on_error)
    return router


async def unknown_button(callback: CallbackQuery) -> None:
    await callback.answer(_("That button has expired."), show_alert=True)


async def unknown_command(message: Message) -> None:
    await message.answer(_("I don't know that command. Send /help to see what I can do."))


async def not_a_command(message: Message) -> None:
    await message.answer(_("I answer to commands. Send /help to see them."))


def build_fallback_router() -> Router:
    """Last router: unknown commands in private chats get a hint (other chats are left alone), and
    a button no handler knows (forged, or left from an older version) is answered, so the
    user's client stops waiting and says why."""
    router = Router(name=f"{__name__}.fallback")
    router.message.filter(F.chat.type == "private")
    router.callback_query.register(unknown_button)
    router.message.register(unknown_command, F.text.startswith("/"))
    router.message.register(not_a_command)
    return router
