"""Connect a group or channel to the SPIKE alerts of a chosen tier (admins only).

- `/connect [free|pro|elite] [en|ru|es|tr|uk]` sent by an admin inside a group connects that group;
- `/connect <chat_id> [free|pro|elite] [en|ru|es|tr|uk]` in the admin's private chat connects any
  group or channel the bot can see (checked with getChat) — the way to connect a channel, whose
  posts carry no sender to check;
- `/disconnect` in the group, or `/disconnect <chat_id>` in private, stops it.

The tier defaults to free (alerts 15 minutes late): a public channel should not undercut the
paid plans unless an admin says so. The alerts are written in the language given, by default the
connecting admin's own. Every change is audited.
"""

from __future__ import annotations

import logging

import asyncpg
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.filters import from_admin
from bot.ids import parse_int, parse_negative
from bot.models import BotUser
from core.errors import BadInput
from core.i18n import LANGUAGE_NAMES, SUPPORTED_LOCALES
from core.texts import html_text, tier_name
from core.tiers import Tier
from db import admin as admin_db
from db import chats as chats_db

log = logging.getLogger(__name__)

GROUP_KINDS = ("group", "supergroup", "channel")


def parse_connect_args(args: str | None, *, private: bool) -> tuple[int | None, Tier, str | None]:
    """Private: `<chat_id> [tier] [lang]`; in a group: `[tier] [lang]` (tier and language in
    either order). ValueError on anything else."""
    parts = (args or "").split()
    chat_id: int | None = None
    if private:
        chat_id = parse_negative(parts.pop(0)) if parts else None
        if chat_id is None:
            raise ValueError("expected a negative chat id")
    tier: Tier | None = None
    language: str | None = None
    for part in (p.lower() for p in parts):
        if part in SUPPORTED_LOCALES and language is None:
            language = part
        elif tier is None:
            tier = Tier(part)
        else:
            raise ValueError("too many arguments")
    return chat_id, tier or Tier.FREE, language


async def save(
    pool: asyncpg.Pool,
    admin_id: int,
    chat_id: int,
    kind: str,
    title: str | None,
    tier: Tier,
    language: str,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await chats_db.connect(
            conn, chat_id, kind=kind, title=title, tier=tier.value, admin_id=admin_id, language=language
        )
        await admin_db.audit(
            conn,
            admin_id,
            "connect",
            str(chat_id),
            {"tier": tier.value, "kind": kind, "language": language},
        )


async def connect_here(message: Message, command: CommandObject, pool: asyncpg.Pool, user: BotUser) -> None:
    try:
        _chat, tier, language = parse_connect_args(command.args, private=False)
    except ValueError:
        raise BadInput(_("Usage: /connect [free|pro|elite] [en|ru|es|tr|uk]")) from None
    assert message.from_user is not None
    language = language or user.language
    await save(
        pool, message.from_user.id, message.chat.id, message.chat.type, message.chat.title, tier, language
    )
    await message.answer(
        _("This chat now receives {tier} spike alerts in {language}.").format(
            tier=tier_name(tier), language=LANGUAGE_NAMES[language]
        )
    )


async def connect_by_id(
    message: Message, command: CommandObject, pool: asyncpg.Pool, bot: Bot, user: BotUser
) -> None:
    try:
        chat_id, tier, language = parse_connect_args(command.args, private=True)
    except ValueError:
        raise BadInput(_("Usage: /connect <chat_id> [free|pro|elite] [en|ru|es|tr|uk]")) from None
    language = language or user.language
    assert chat_id is not None and message.from_user is not None
    try:
        chat = await bot.get_chat(chat_id)
    except (TelegramBadRequest, TelegramForbiddenError):
        raise BadInput(
            _("I cannot see chat {chat_id}. Add me to it (as an admin in a channel) first.").format(
                chat_id=chat_id
            )
        ) from None
    if chat.type not in GROUP_KINDS:
        raise BadInput(_("Chat {chat_id} is not a group or channel.").format(chat_id=chat_id))
    await save(pool, message.from_user.id, chat.id, chat.type, chat.title, tier, language)
    await message.answer(
        _("{title} now receives {tier} spike alerts in {language}.").format(
            title=html_text(chat.title or chat.id),
            tier=tier_name(tier),
            language=LANGUAGE_NAMES[language],
        )
    )


async def disconnect(message: Message, command: CommandObject, pool: asyncpg.Pool) -> None:
    assert message.from_user is not None
    if message.chat.type == "private":
        typed = parse_int((command.args or "").strip())
        if typed is None:
            raise BadInput(_("Usage: /disconnect <chat_id>"))
        chat_id = typed
    else:
        chat_id = message.chat.id
    async with pool.acquire() as conn, conn.transaction():
        found = await chats_db.disconnect(conn, chat_id)
        await admin_db.audit(conn, message.from_user.id, "disconnect", str(chat_id), {"ok": found})
    if not found:
        raise BadInput(_("Chat {chat_id} is not connected.").format(chat_id=chat_id))
    await message.answer(_("Chat {chat_id} no longer receives alerts.").format(chat_id=chat_id))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(from_admin)
    router.message.register(connect_here, Command("connect"), F.chat.type.in_({"group", "supergroup"}))
    router.message.register(connect_by_id, Command("connect"), F.chat.type == "private")
    router.message.register(disconnect, Command("disconnect"))
    return router
