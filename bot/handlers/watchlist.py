"""`/watch`, `/unwatch` and `/watchlist`: the symbols a user follows, within the tier's size."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.models import BotUser
from core.errors import BadInput
from core.symbols import Resolution, resolve, split_args
from core.texts import chunks, html_text, tier_name
from core.tiers import limits
from db import user_settings as settings_db
from db import watchlists as watchlists_db

MAX_SYMBOLS_PER_COMMAND = 100  # the answer stays a few messages long
SYMBOLS_PER_LINE = 20  # a long watchlist splits into messages at line ends


def check_count(tokens: list[str]) -> None:
    if len(tokens) > MAX_SYMBOLS_PER_COMMAND:
        raise BadInput(
            ngettext(
                "Send at most {count} symbol at a time.",
                "Send at most {count} symbols at a time.",
                MAX_SYMBOLS_PER_COMMAND,
            ).format(count=MAX_SYMBOLS_PER_COMMAND)
        )


async def empty_warning(pool: asyncpg.Pool, user: BotUser) -> list[str]:
    """The warning for a watchlist-only user whose watchlist just became empty."""
    if (await settings_db.get(pool, user.id)).watchlist_only and not await watchlists_db.list_symbols(
        pool, user.id
    ):
        return ["⚠️ " + _("Your watchlist is empty, so no alert reaches you. Add symbols with /watch BTC ETH")]
    return []


def joined(symbols: Iterable[str]) -> str:
    return ", ".join(html_text(symbol) for symbol in symbols)


def unknown_lines(resolution: Resolution) -> list[str]:
    lines = []
    for typed, suggestions in resolution.unknown.items():
        if suggestions:
            lines.append(
                _("Unknown symbol {symbol}. Did you mean: {suggestions}?").format(
                    symbol=f"<code>{html_text(typed, limit=40)}</code>",
                    suggestions=joined(suggestions),
                )
            )
        else:
            shown = f"<code>{html_text(typed, limit=40)}</code>"
            lines.append(_("Unknown symbol {symbol}.").format(symbol=shown))
    return lines


async def watch(message: Message, command: CommandObject, user: BotUser, pool: asyncpg.Pool) -> None:
    tokens = split_args(command.args)
    if not tokens:
        await message.answer(_("Tell me which symbols to watch, e.g. /watch BTC ETH SOLUSDT"))
        return
    check_count(tokens)
    resolution = resolve(tokens, await watchlists_db.active_symbols(pool))
    lines = unknown_lines(resolution)
    if resolution.symbols:
        size = limits(user.tier).watchlist_size
        result = await watchlists_db.add(pool, user.id, resolution.symbols, size)
        if result.added:
            lines.append(_("Added: {symbols}").format(symbols=joined(result.added)))
        if result.already:
            lines.append(_("Already watched: {symbols}").format(symbols=joined(result.already)))
        if result.over_limit:
            lines.append(
                _(
                    "Not added, your watchlist is full ({size} symbols on {tier}): {symbols}. "
                    "A bigger plan holds more: /subscribe"
                ).format(size=size, tier=tier_name(user.tier), symbols=joined(result.over_limit))
            )
    for text in chunks(lines):
        await message.answer(text)


async def unwatch(message: Message, command: CommandObject, user: BotUser, pool: asyncpg.Pool) -> None:
    tokens = split_args(command.args)
    if not tokens:
        await message.answer(_("Tell me which symbols to remove, e.g. /unwatch BTC, or /unwatch all"))
        return
    check_count(tokens)
    if [t.lower() for t in tokens] == ["all"]:
        removed = await watchlists_db.clear(pool, user.id)
        done = _("Your watchlist is now empty.") if removed else _("Your watchlist is already empty.")
        await message.answer("\n".join([done, *await empty_warning(pool, user)]))
        return
    watched = await watchlists_db.list_symbols(pool, user.id)
    # Symbols on the list resolve even when they no longer trade (delisted ones can be removed).
    universe = await watchlists_db.active_symbols(pool)
    universe.update({s: s.removesuffix("USDT") for s in watched if s not in universe})
    resolution = resolve(tokens, universe)
    lines = unknown_lines(resolution)
    removed = await watchlists_db.remove(pool, user.id, resolution.symbols)
    if removed:
        lines.append(_("Removed: {symbols}").format(symbols=joined(sorted(removed))))
    missing = [s for s in resolution.symbols if s not in removed]
    if missing:
        lines.append(_("Not in your watchlist: {symbols}").format(symbols=joined(missing)))
    if removed:
        lines += await empty_warning(pool, user)
    for text in chunks(lines):
        await message.answer(text)


async def show(message: Message, user: BotUser, pool: asyncpg.Pool) -> None:
    symbols = await watchlists_db.list_symbols(pool, user.id)
    size = limits(user.tier).watchlist_size
    if not symbols:
        await message.answer(_("Your watchlist is empty. Add symbols with /watch BTC ETH"))
        return
    if size is None:
        header = _("Your watchlist ({count}):").format(count=len(symbols))
    else:
        header = _("Your watchlist ({count} of {size}):").format(count=len(symbols), size=size)
    rows = [joined(symbols[i : i + SYMBOLS_PER_LINE]) for i in range(0, len(symbols), SYMBOLS_PER_LINE)]
    for text in chunks([header, *rows]):
        await message.answer(text)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")
    router.message.register(watch, Command("watch"))
    router.message.register(unwatch, Command("unwatch"))
    router.message.register(show, Command("watchlist"))
    return router
