"""The page handlers: each renders its template with what the page needs before any script
runs (the symbol, the tier table, the settings presets); the figures come from the JSON API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup

from core.alerts import format_usd
from core.daily_cap import DAILY_CAP_PRESETS
from core.number_format import format_change
from core.presets import format_multiple, multiple_presets, volume_presets
from core.settings import Settings
from core.symbols import resolve_one, suggest
from core.tiers import TIERS, Tier
from db import symbols as db_symbols
from webapp import keys
from webapp.api.candles import page_json
from webapp.api.models import CandlesQuery, RecordPage
from webapp.api.record import record_json
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
    free_delay = int(TIERS[Tier.FREE].alert_delay.total_seconds() // 60)
    return render(request, "feed.html", {**common(request, "feed"), "free_delay": free_delay})


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
    row = (await request.app[keys.UNIVERSE].rows()).get(symbol)
    context = {
        **common(request, "chart"),
        "symbol": symbol,
        "asset": universe[symbol],
        # the price decimals of the symbol's tick size (ingest/universe.py), for every price shown
        "decimals": row.price_precision if row is not None else None,
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
        "daily_caps": DAILY_CAP_PRESETS,
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


RECORD_HORIZONS = (15, 60, 240)


def _change(value: float | None) -> str:
    return "–" if value is None else format_change(value)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def _chart_rows(page: RecordPage, horizon: int) -> list[dict[str, Any]]:
    """Each grouping with, per bucket, where the quartile box and the median of `horizon` sit
    on a shared axis (percent of the width, 50 = no move), for the page's bar chart."""
    groupings = []
    for grouping in page.groupings:
        stats = [next(h for h in b.horizons if h.minutes == horizon) for b in grouping.buckets]
        reach = max([1.0, *(abs(v) for s in stats for v in (s.p25, s.p75) if v is not None)])

        def at(value: float, reach: float = reach) -> float:
            return round(50 + 50 * value / reach, 2)

        rows = []
        for bucket, chosen in zip(grouping.buckets, stats, strict=True):
            bar = None
            if chosen.median is not None and chosen.p25 is not None and chosen.p75 is not None:
                bar = {"left": at(chosen.p25), "width": round(at(chosen.p75) - at(chosen.p25), 2),
                       "median": at(chosen.median)}  # fmt: skip
            rows.append({"bucket": bucket, "chosen": chosen, "bar": bar})
        groupings.append({"grouping": grouping, "rows": rows, "reach": reach})
    return groupings


async def record(request: web.Request) -> web.Response:
    """The public track record (the figures of GET /api/record), drawn as bars."""
    days = 90 if request.query.get("days") == "90" else 30
    horizon = int(request.query.get("h", "60")) if request.query.get("h") in ("15", "60", "240") else 60
    page = RecordPage.model_validate_json(await record_json(request, days))
    context = {
        **common(request, "record"),
        "record": page,
        "days": days,
        "horizon": horizon,
        "horizons": RECORD_HORIZONS,
        "groupings": _chart_rows(page, horizon),
        "change": _change,
        "share_pct": _share,
    }
    return render(request, "record.html", context)
