"""The page handlers: each renders its template with what the page needs before any script
runs (the symbol, the tier table, the settings presets); the figures come from the JSON API."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.keyboards.settings import format_multiple, multiple_presets, volume_presets
from bot.symbols import resolve_one
from db import symbols as db_symbols
from volspike.alerts import format_usd
from volspike.tiers import TIERS, Tier
from webapp import keys
from webapp.pages.templating import render

INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")
DEFAULT_INTERVAL = "1h"
FIRST_PAGE = 300  # candles the chart asks for first (chart.js PAGE)


def candle_preloads(symbol: str, interval: str) -> list[str]:
    """The chart's first /api/candles requests, byte for byte as chart.js builds them
    (URLSearchParams order), so the browser fetches them while the scripts load."""
    wanted = [(interval, FIRST_PAGE), *([] if interval == "1m" else [("1m", 3)]), ("1h", 2)]
    return [f"/api/candles?{urlencode({'symbol': symbol, 'interval': i, 'limit': n})}" for i, n in wanted]


def _common(request: web.Request, page: str) -> dict[str, Any]:
    settings = request.app[keys.SETTINGS]
    return {"page": page, "app_link": settings.telegram_app_link}


async def feed(request: web.Request) -> web.Response:
    return render(request, "feed.html", _common(request, "feed"))


async def markets(request: web.Request) -> web.Response:
    return render(request, "markets.html", _common(request, "markets"))


async def chart(request: web.Request) -> web.StreamResponse:
    token = request.match_info["symbol"]
    universe = await db_symbols.assets(request.app[keys.POOL])
    symbol = resolve_one(token, universe)
    if symbol is None:
        context = {**_common(request, "chart"), "symbol": token.upper()[:30]}
        response = render(request, "unknown_symbol.html", context)
        response.set_status(404)
        return response
    interval = request.query.get("interval", DEFAULT_INTERVAL)
    if symbol != token or interval not in INTERVALS:
        query = {"interval": interval if interval in INTERVALS else DEFAULT_INTERVAL}
        raise web.HTTPFound(request.app.router["chart"].url_for(symbol=symbol).with_query(query))
    context = {
        **_common(request, "chart"),
        "symbol": symbol,
        "asset": universe[symbol],
        "interval": interval,
        "intervals": INTERVALS,
        "candle_preloads": candle_preloads(symbol, interval),
    }
    return render(request, "chart.html", context)


async def watchlist(request: web.Request) -> web.Response:
    return render(request, "watchlist.html", _common(request, "watchlist"))


async def settings(request: web.Request) -> web.Response:
    app_settings = request.app[keys.SETTINGS]
    context = {
        **_common(request, "settings"),
        "multiples": [
            (value, format_multiple(value)) for value in multiple_presets(app_settings.spike_multiple)
        ],
        "volumes": [
            (value, format_usd(value)) for value in volume_presets(app_settings.spike_min_quote_volume)
        ],
        "default_multiple": format_multiple(app_settings.spike_multiple),
        "default_volume": format_usd(app_settings.spike_min_quote_volume),
    }
    return render(request, "settings.html", context)


async def plans(request: web.Request) -> web.Response:
    app_settings = request.app[keys.SETTINGS]
    stars = {Tier.PRO: app_settings.stars_price_pro, Tier.ELITE: app_settings.stars_price_elite}
    table = [
        {
            "tier": tier.value,
            "delay_minutes": int(limits.alert_delay.total_seconds() // 60),
            "history": limits.history,
            "watchlist": limits.watchlist_size,
            "own_thresholds": limits.custom_thresholds,
            "updates": limits.updates,
            "stars": stars.get(tier),
        }
        for tier, limits in TIERS.items()
    ]
    return render(request, "plans.html", {**_common(request, "plans"), "plans": table})
