"""The "Mute <asset> 24 h" button under an alert: no alerts for that symbol for a day."""

from __future__ import annotations

import re
from datetime import timedelta

import asyncpg
from aiogram import F, Router
from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _

from bot.alert_message import MUTE_PREFIX
from volspike.clock import Clock
from volspike.settings import Settings

MUTE_FOR = timedelta(hours=24)
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")

# Muting again extends the mute from now; it never shortens a longer one.
MUTE = """
INSERT INTO mutes (user_id, symbol, until) VALUES ($1, $2, $3)
ON CONFLICT (user_id, symbol) DO UPDATE SET until = greatest(mutes.until, EXCLUDED.until)
"""


def build_router(settings: Settings) -> Router:
    router = Router(name=__name__)

    @router.callback_query(F.data.startswith(MUTE_PREFIX))
    async def mute(callback: CallbackQuery, pool: asyncpg.Pool, clock: Clock) -> None:
        symbol = (callback.data or "").removeprefix(MUTE_PREFIX)
        if not _SYMBOL.match(symbol):
            await callback.answer(_("That button has expired."), show_alert=True)
            return
        await pool.execute(MUTE, callback.from_user.id, symbol, clock.now() + MUTE_FOR)
        await callback.answer(_("{symbol} muted for 24 hours.").format(symbol=symbol))

    return router
