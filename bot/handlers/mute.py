"""The "Mute <asset> 24 h" button under an alert: no alerts for that symbol for a day.

Callback data can be forged or outlive its symbol: it is honoured only for a symbol the
universe holds, by the bot's one symbol rule (`core.symbols`)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from aiogram import F, Router
from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _

from bot.alert_message import MUTE_PREFIX
from core.clock import Clock
from core.settings import Settings
from core.symbols import symbol_from_callback
from db import mutes as mutes_db
from db import symbols as symbols_db

MUTE_FOR = timedelta(hours=24)


def build_router(settings: Settings) -> Router:
    router = Router(name=__name__)

    @router.callback_query(F.data.startswith(MUTE_PREFIX))
    async def mute(callback: CallbackQuery, pool: asyncpg.Pool, clock: Clock) -> None:
        symbol = symbol_from_callback(MUTE_PREFIX, callback.data)
        if symbol is None or not await symbols_db.is_known(pool, symbol):
            await callback.answer(_("That button has expired."), show_alert=True)
            return
        await mutes_db.mute(pool, callback.from_user.id, symbol, clock.now() + MUTE_FOR)
        await callback.answer(_("{symbol} muted for 24 hours.").format(symbol=symbol))

    return router
