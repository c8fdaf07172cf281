"""`/broadcast <text>` or `/broadcast` as a reply to a message (admins only).

Preview (exactly what users will get) → Confirm / Cancel → on confirm the broadcast is `running`
with one recipient row per reachable user, and the confirmation message becomes the progress
message (with a Cancel button) that `bot.delivery.broadcast.BroadcastRunner` keeps editing.
"""

from __future__ import annotations

import asyncpg
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.delivery.broadcast import CONFIRM_PREFIX, DISCARD_PREFIX, STOP_PREFIX, progress_text, stop_keyboard
from bot.filters import from_admin
from bot.ids import parse_positive
from core.errors import BadInput
from db import admin as admin_db
from db import broadcasts as broadcasts_db
from db.broadcasts import Progress

MAX_TEXT = 4096


def _broadcast_id(data: str | None, prefix: str) -> int | None:
    return parse_positive((data or "").removeprefix(prefix))


async def draft(message: Message, command: CommandObject, pool: asyncpg.Pool, bot: Bot) -> None:
    assert message.from_user is not None
    text = (command.args or "").strip()
    reply = message.reply_to_message
    if reply is None and not text:
        raise BadInput(_("Usage: /broadcast <text>, or reply /broadcast to the message to send."))
    if len(text) > MAX_TEXT:
        raise BadInput(_("A broadcast can be at most 4096 characters long."))
    async with pool.acquire() as conn:
        if reply is not None:
            broadcast_id = await broadcasts_db.create_draft(
                conn, message.from_user.id, from_chat_id=message.chat.id, message_id=reply.message_id
            )
        else:
            broadcast_id = await broadcasts_db.create_draft(conn, message.from_user.id, text=text)
        audience = await broadcasts_db.audience(conn)
    # The preview is the message itself, sent the way users will receive it. A message that
    # cannot be copied (a service message, one deleted since) leaves no draft behind.
    try:
        if reply is not None:
            await bot.copy_message(message.chat.id, message.chat.id, reply.message_id)
        else:
            await bot.send_message(message.chat.id, text, parse_mode=None)
    except TelegramBadRequest as exc:
        async with pool.acquire() as conn:
            await broadcasts_db.cancel(conn, broadcast_id)
        raise BadInput(
            _("This message cannot be broadcast: Telegram said {error}").format(error=exc.message)
        ) from None
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=_("Send"), callback_data=f"{CONFIRM_PREFIX}{broadcast_id}"),
                InlineKeyboardButton(text=_("Cancel"), callback_data=f"{DISCARD_PREFIX}{broadcast_id}"),
            ]
        ]
    )
    await message.answer(
        _("Send the message above to {count} users?").format(count=audience), reply_markup=keyboard
    )


async def confirm(callback: CallbackQuery, pool: asyncpg.Pool, i18n: I18n) -> None:
    broadcast_id = _broadcast_id(callback.data, CONFIRM_PREFIX)
    message = callback.message
    if broadcast_id is None or not isinstance(message, Message):
        await callback.answer(_("That button has expired."), show_alert=True)
        return
    async with pool.acquire() as conn, conn.transaction():
        total = await broadcasts_db.start(conn, broadcast_id)
        if total is not None:
            await broadcasts_db.set_progress_message(conn, broadcast_id, message.chat.id, message.message_id)
            await admin_db.audit(
                conn, callback.from_user.id, "broadcast", str(broadcast_id), {"total": total}
            )
    if total is None:
        await callback.answer(_("This broadcast was already sent or cancelled."), show_alert=True)
        return
    locale = i18n.current_locale
    progress = Progress(total=total, sent=0, blocked=0, failed=0, remaining=total)
    await message.edit_text(
        progress_text(i18n, locale, broadcast_id, progress, "running"),
        reply_markup=stop_keyboard(i18n, locale, broadcast_id),
    )
    await callback.answer()


async def cancel(callback: CallbackQuery, pool: asyncpg.Pool) -> None:
    data = callback.data or ""
    prefix = STOP_PREFIX if data.startswith(STOP_PREFIX) else DISCARD_PREFIX
    broadcast_id = _broadcast_id(data, prefix)
    if broadcast_id is None:
        await callback.answer(_("That button has expired."), show_alert=True)
        return
    async with pool.acquire() as conn, conn.transaction():
        cancelled = await broadcasts_db.cancel(conn, broadcast_id)
        if cancelled:
            await admin_db.audit(conn, callback.from_user.id, "broadcast_cancel", str(broadcast_id), {})
    if not cancelled:
        await callback.answer(_("This broadcast was already sent or cancelled."), show_alert=True)
        return
    if isinstance(callback.message, Message) and prefix == DISCARD_PREFIX:
        await callback.message.edit_text(_("Broadcast #{id} was cancelled.").format(id=broadcast_id))
    # A running broadcast's final counts are edited in by the runner when it stops.
    await callback.answer(_("Broadcast #{id} was cancelled.").format(id=broadcast_id))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(from_admin, F.chat.type == "private")
    router.callback_query.filter(from_admin)
    router.message.register(draft, Command("broadcast"))
    router.callback_query.register(confirm, F.data.startswith(CONFIRM_PREFIX))
    router.callback_query.register(cancel, F.data.startswith(DISCARD_PREFIX) | F.data.startswith(STOP_PREFIX))
    return router
