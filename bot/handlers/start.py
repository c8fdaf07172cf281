"""`/start` (with an optional chart deep link such as `/start BTCUSDT`) and `/help`."""

from __future__ import annotations

import re

import asyncpg
from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards.webapp import chart_keyboard, open_app_keyboard
from core.settings import Settings
from core.symbols import resolve_one
from core.texts import html_text
from db import watchlists as watchlists_db

# Deep-link payloads are [A-Za-z0-9_-]{1,64}; we accept `BTCUSDT` and `chart_BTCUSDT`.
_PAYLOAD = re.compile(r"^(?:chart[_-])?([A-Za-z0-9]{1,30})$")


def welcome_text(first_name: str | None) -> str:
    return _(
        "Hi, {name}! I am <b>VolSpike</b>.\n\n"
        "I watch every Binance USDⓈ-M perpetual and message you the moment a coin's hourly "
        "volume jumps far above the previous hour — a volume spike.\n\n"
        "Start with /watch BTC ETH to build a watchlist, tune alerts in /settings, "
        "and see the latest spikes with /alerts. /help lists everything."
    ).format(name=html_text(first_name or _("trader")))


def help_text() -> str:
    return (
        _(
            "<b>Commands</b>\n"
            "/alerts — latest volume spikes\n"
            "/watch BTC ETH — add symbols to your watchlist\n"
            "/unwatch BTC — remove symbols (/unwatch all clears the list)\n"
            "/watchlist — your watchlist\n"
            "/settings — multiple, minimum volume, alert types, quiet hours, pause\n"
            "/status — your plan and what is on\n"
            "/subscribe — plans and prices\n"
            "/subscription — your plan and its renewal\n"
            "/paysupport — help with a payment\n"
            "/terms — terms of payment\n"
            "/language — change the language\n"
            "/stop — pause all alerts\n\n"
            "An alert says how much a coin traded this hour and how many times the previous hour "
            "that is, e.g. <i>BTC hourly volume $5.00B (3.33× prev)</i>."
        )
        + "\n\n"
        + _("Muted a symbol with the button under an alert? /mutes lists your mutes and lifts them.")
    )


async def start_with_chart(
    message: Message, command: CommandObject, pool: asyncpg.Pool, settings: Settings
) -> None:
    match = _PAYLOAD.match(command.args or "")
    assert match is not None
    symbol = resolve_one(match.group(1), await watchlists_db.active_symbols(pool))
    if symbol is None:
        await start(message, settings)
        return
    if settings.webapp_url:
        await message.answer(
            _("Here is the {symbol} chart.").format(symbol=symbol),
            reply_markup=chart_keyboard(settings.webapp_url, symbol),
        )
    else:
        await message.answer(
            _("{symbol}: charts open in the Mini App, which is not available right now. See /alerts.").format(
                symbol=symbol
            )
        )


async def start(message: Message, settings: Settings) -> None:
    first_name = message.from_user.first_name if message.from_user else None
    await message.answer(welcome_text(first_name), reply_markup=open_app_keyboard(settings.webapp_url))


async def help_(message: Message) -> None:
    await message.answer(help_text())


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")
    router.message.register(start_with_chart, CommandStart(deep_link=True, magic=F.args.regexp(_PAYLOAD)))
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    return router
