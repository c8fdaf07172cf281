"""/api/watchlist: the symbols a user follows, within the tier's size; the same data and
rules as the bot's /watch, /unwatch and /watchlist (db/watchlists.py, core/symbols.py)."""

from __future__ import annotations

from aiohttp import web

from core.errors import UnknownSymbol, WatchlistFull
from core.symbols import resolve_one
from core.tiers import limits
from db import watchlists as watchlists_db
from webapp import keys
from webapp.api.models import Watchlist, WatchlistBody
from webapp.api.spec import API, parse_body, respond
from webapp.auth import WebUser, require_user


async def _answer(request: web.Request, user: WebUser) -> web.Response:
    symbols = await watchlists_db.list_symbols(request.app[keys.POOL], user.id)
    return respond(Watchlist(symbols=symbols, limit=limits(user.tier).watchlist_size))


@API.route("GET", "/api/watchlist", response=Watchlist, auth="required", tag="watchlist")
async def get_watchlist(request: web.Request) -> web.Response:
    """The user's watchlist and its size limit (null: unlimited)."""
    return await _answer(request, require_user(request))


@API.route(
    "POST",
    "/api/watchlist",
    body=WatchlistBody,
    response=Watchlist,
    auth="required",
    errors=(400, 403),
    tag="watchlist",
)
async def add_to_watchlist(request: web.Request) -> web.Response:
    """Add a symbol (`BTC` or `BTCUSDT`); 403 `watchlist_full` when the tier's size is reached."""
    user = require_user(request)
    body = await parse_body(request, WatchlistBody)
    symbol = resolve_one(body.symbol, await request.app[keys.UNIVERSE].assets())
    if symbol is None:
        raise UnknownSymbol(f"unknown symbol {body.symbol[:30]!r}")
    size = limits(user.tier).watchlist_size
    result = await watchlists_db.add(request.app[keys.POOL], user.id, [symbol], size)
    if result.over_limit:
        raise WatchlistFull({"limit": size})
    return await _answer(request, user)


@API.route(
    "DELETE", "/api/watchlist/{symbol}", response=Watchlist, auth="required", errors=(400,), tag="watchlist"
)
async def remove_from_watchlist(request: web.Request) -> web.Response:
    """Remove a symbol (also one that no longer trades); removing an absent one is no error."""
    user = require_user(request)
    typed = request.match_info["symbol"]
    pool = request.app[keys.POOL]
    watched = await watchlists_db.list_symbols(pool, user.id)
    universe = dict(await request.app[keys.UNIVERSE].assets())
    universe.update({s: s.removesuffix("USDT") for s in watched})
    symbol = resolve_one(typed, universe)
    if symbol is None:
        raise UnknownSymbol(f"unknown symbol {typed[:30]!r}")
    await watchlists_db.remove(pool, user.id, [symbol])
    return await _answer(request, user)
