"""`/stop`: pause every alert (resume in /settings)."""

from __future__ import annotations

import asyncpg
from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.models import BotUser
from db import user_settings as settings_db


async def stop(message: Message, user: BotUser, pool: asyncpg.Pool) -> None:
    await settings_db.set_paused(pool, user.id, True)
    await message.answer(_("All alerts are paused. Resume them any time in /settings."))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")
    router.message.register(stop, Command("stop"))
    return router
