"""Telling the admin who connected a group or channel that the delivery deactivated it: Telegram
refused a message there (403: the bot was removed or lost the right to post), so no more alerts
go to it until an admin connects it again. Run with the lifecycle job; each chat is told once."""

from __future__ import annotations

import logging

import asyncpg
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from core.texts import html_text
from db import chats as chats_db

log = logging.getLogger(__name__)


def deactivated_text(chat_id: int, title: str | None) -> str:
    return _(
        "Telegram refused the alerts for {title} ({chat_id}): the bot was removed there or may not "
        "post. The chat no longer receives alerts; add the bot back and send /connect {chat_id} to resume."
    ).format(title=html_text(title or chat_id), chat_id=chat_id)


async def tell_deactivated(pool: asyncpg.Pool, bot: Bot, i18n: I18n) -> int:
    count = 0
    for row in await chats_db.claim_deactivated(pool):
        locale = (
            row["admin_language"] if row["admin_language"] in i18n.available_locales else i18n.default_locale
        )
        with i18n.context(), i18n.use_locale(locale):
            body = deactivated_text(row["id"], row["title"])
        try:
            await bot.send_message(row["connected_by"], body)
        except TelegramAPIError as exc:
            log.warning("chat deactivation notice not sent", extra={"chat_id": row["id"], "error": str(exc)})
            continue
        count += 1
    return count
