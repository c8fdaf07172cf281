"""`/watch`, `/unwatch` and `/watchlist`: the symbols a user follows, within the tier's size."""

from __future__ import annotations

import asyncpg
from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.models import BotUser
from bot.symbols import Resolution, resolve, split_args
from bot.texts import tier_name
from db import watchlists as watchlists_db
from volspike.settings import Settings
from volspike.tiers import limits


def unknown_lines(resolution: Resolution) -> list[str]:
    lines = []
    for typed, suggestions in resolution.unknown.items():
        if suggestions:
            lines.append(
                _("Unknown symbol {symbol}. Did you mean: {suggestions}?").format(
                    symbol=f"<code>{_escape(typed)}</code>", suggestions=", ".join(suggestions)
                )
            )
        else:
            lines.append(_("Unknown symbol {symbol}.").format(symbol=f"<code>{_escape(typed)}</code>"))
    return lines


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")[:40]


def build_router(settings: Settings) -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")

    @router.message(Command("watch"))
    async def watch(message: Message, command: CommandObject, user: BotUser, pool: asyncpg.Pool) -> None:
        tokens = split_args(command.args)
        if not tokens:
            await message.answer(_("Tell me which symbols to watch, e.g. /watch BTC ETH SOLUSDT"))
            return
        resolution = resolve(tokens, await watchlists_db.active_symbols(pool))
        lines = unknown_lines(resolution)
        if resolution.symbols:
            size = limits(user.tier).watchlist_size
            result = await watchlists_db.add(pool, user.id, resolution.symbols, size)
            if result.added:
                lines.append(_("Added: {symbols}").format(symbols=", ".join(result.added)))
            if result.already:
                lines.append(_("Already watched: {symbols}").format(symbols=", ".join(result.already)))
            if result.over_limit:
                lines.append(
                    _("Not added, your watchlist is full ({size} symbols on {tier}): {symbols}").format(
                        size=size, tier=tier_name(user.tier), symbols=", ".join(result.over_limit)
                    )
                )
        await message.answer("\n".join(lines))

    @router.message(Command("unwatch"))
    async def unwatch(message: Message, command: CommandObject, user: BotUser, pool: asyncpg.Pool) -> None:
        tokens = split_args(command.args)
        if not tokens:
            await message.answer(_("Tell me which symbols to remove, e.g. /unwatch BTC, or /unwatch all"))
            return
        if [t.lower() for t in tokens] == ["all"]:
            removed = await watchlists_db.clear(pool, user.id)
            await message.answer(
                _("Your watchlist is now empty.") if removed else _("Your watchlist is already empty.")
            )
            return
        watched = await watchlists_db.list_symbols(pool, user.id)
        # Symbols on the list resolve even when they no longer trade (delisted ones can be removed).
        universe = await watchlists_db.active_symbols(pool)
        universe.update({s: s.removesuffix("USDT") for s in watched if s not in universe})
        resolution = resolve(tokens, universe)
        lines = unknown_lines(resolution)
        removed = await watchlists_db.remove(pool, user.id, resolution.symbols)
        if removed:
            lines.append(_("Removed: {symbols}").format(symbols=", ".join(sorted(removed))))
        missing = [s for s in resolution.symbols if s not in removed]
        if missing:
            lines.append(_("Not in your watchlist: {symbols}").format(symbols=", ".join(missing)))
        await message.answer("\n".join(lines))

    @router.message(Command("watchlist"))
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
        await message.answer(f"{header}\n" + ", ".join(symbols))

    return router
