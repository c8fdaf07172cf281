"""The page handlers: each renders its template with what the page needs before any script
runs (the symbol, the tier table, the settings presets); the figures come from the JSON API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup

from bot.keyboards.settings import format_multiple, multiple_presets, volume_presets
from bot.symbols import resolve_one, suggest
from db import symbols as db_symbols
from volspike.alerts import format_usd
from volspike.settings import Settings
from volspike.tiers import TIERS, Tier
from webapp import keys
from webapp.api.candles import page_json
from webapp.api.models import CandlesQuery
from webapp.api.viewer import viewer_tier
from webapp.pages.templating import render

INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")
DEFAULT_INTERVAL = "1h"
FIRST_PAGE = 300  # candles the chart asks for first (chart.js PAGE)


def first_candle_queries(symbol: str, interval: str) -> list[tuple[str, CandlesQuery]]:
    """The chart's first /api/candles requests, each with its URL byte for byte as chart.js
    builds it (URLSearchParams order)."""
    wanted = [(interval, FIRST_PAGE), *([] if interval == "1m" else [("1m", 3)]), ("1h", 2)]
    return [
        (
            f"/api/candles?{urlencode({'symbol': symbol, 'interval': i, 'limit': n})}",
            CandlesQuery.model_validate({"symbol": symbol, "interval": i, "limit": n}),
        )
        for i, n in wanted
    ]


async def first_candles(request: web.Request, symbol: str, interval: str) -> Markup:
    """The answers to the chart's first candle requests, inline in the page as one JSON object
    keyed by their URLs (`<script type="application/json">`, not executed): the first candles
    are drawn as soon as the chart module runs, with no request after it. The same bytes as
    the API answers them (public view: the page request carries no initData)."""
    tier = viewer_tier(request)
    parts = [
        f"{json.dumps(url)}:{(await page_json(request, query, tier)).decode()}"
        for url, query in first_candle_queries(symbol, interval)
    ]
    return Markup("{" + ",".join(parts).replace("<", "\\u003c") + "}")  # nothing can close the tag


def common(request: web.Request, page: str) -> dict[str, Any]:
    settings = request.app[keys.SETTINGS]
    return {"page": page, "app_link": settings.telegram_app_link}


async def feed(request: web.Request) -> web.Response:
    return render(request, "feed.html", common(request, "feed"))


async def markets(request: web.Request) -> web.Response:
    return render(request, "markets.html", common(request, "markets"))


async def chart(request: web.Request) -> web.StreamResponse:
    token = request.match_info["symbol"]
    universe = await db_symbols.assets(request.app[keys.POOL])
    symbol = resolve_one(token, universe)
    if symbol is None:
        context = {
            **common(request, "unknown"),
            "symbol": token.upper()[:30],
            "suggestions": suggest(token, universe),
        }
        response = render(request, "unknown_symbol.html", context)
        response.set_status(404)
        return response
    interval = request.query.get("interval", DEFAULT_INTERVAL)
    if symbol != token or interval not in INTERVALS:
        query = {"interval": interval if interval in INTERVALS else DEFAULT_INTERVAL}
        raise web.HTTPFound(request.app.router["chart"].url_for(symbol=symbol).with_query(query))
    context = {
        **common(request, "chart"),
        "symbol": symbol,
        "asset": universe[symbol],
        "interval": interval,
        "intervals": INTERVALS,
        "first_candles": await first_candles(request, symbol, interval),
    }
    return render(request, "chart.html", context)


async def watchlist(request: web.Request) -> web.Response:
    return render(request, "watchlist.html", common(request, "watchlist"))


async def settings(request: web.Request) -> web.Response:
    app_settings = request.app[keys.SETTINGS]
    context = {
        **common(request, "settings"),
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


def plan_rows(app_settings: Settings) -> list[dict[str, Any]]:
    """The tier table of /plans and /billing: each tier's limits and its Stars price."""
    stars = {Tier.PRO: app_settings.stars_price_pro, Tier.ELITE: app_settings.stars_price_elite}
    return [
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


async def plans(request: web.Request) -> web.Response:
    table = plan_rows(request.app[keys.SETTINGS])
    return render(request, "plans.html", {**common(request, "plans"), "plans": table})
