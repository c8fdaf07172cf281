"""GET /api/candles: OHLCV of one symbol at 1m…1d, aggregated from `candles_1m` in SQL, with
the markers of the alerts that fired in the range (the caller's tier window applied)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from aiohttp import web

from core.errors import BadInput
from core.tiers import Tier, feed_window
from db import alert_feed
from db.candles import TIMEFRAMES, fetch_bars
from webapp import keys
from webapp.api.models import CandlesPage, CandlesQuery
from webapp.api.spec import API, parse_query
from webapp.api.viewer import viewer_tier


def candle_range(
    query_from: int | None, query_to: int | None, step: timedelta, limit: int, now: datetime
) -> tuple[datetime, datetime]:
    """[start, end) of a request: `to` defaults to now, `from` to `limit` bars before `to`."""
    end = datetime.fromtimestamp(query_to, UTC) if query_to is not None else now + step
    start = datetime.fromtimestamp(query_from, UTC) if query_from is not None else end - step * (limit + 1)
    if start >= end:
        raise BadInput("`from` must be before `to`")
    return start, end


CACHE_SECONDS = 5  # the forming bar moves on over /ws meanwhile


async def _page_json(request: web.Request, query: CandlesQuery, tier: Tier) -> bytes:
    """The `CandlesPage` of a query, as JSON. Its figures come from our own SQL, so they are
    written with orjson straight from the columns instead of being validated bar by bar (a
    test checks every answer against `CandlesPage`)."""
    step = TIMEFRAMES[query.interval]
    now = request.app[keys.CLOCK].now()
    start, end = candle_range(query.from_, query.to, step, query.limit, now)
    pool = request.app[keys.POOL]
    bars = await fetch_bars(pool, query.symbol, query.interval, start, end, query.limit)
    markers: list[dict[str, object]] = []
    if bars.t:
        window = feed_window(tier, now)
        found = await alert_feed.markers(
            pool,
            query.symbol,
            datetime.fromtimestamp(bars.t[0], UTC),
            end,
            visible_until=window.visible_until,
            types=window.types,
        )
        markers = [
            {
                "t": int(r["detected_at"].timestamp()),
                "type": r["alert_type"],
                "ratio": round(r["volume_ratio"], 4),
            }
            for r in found
        ]
    return orjson.dumps(
        {
            "symbol": query.symbol,
            "interval": query.interval,
            "candles": [
                {"t": t, "o": o, "h": h, "l": low, "c": c, "v": v}
                for t, o, h, low, c, v in zip(bars.t, bars.o, bars.h, bars.l, bars.c, bars.v, strict=True)
            ],
            "markers": markers,
        }
    )


@API.route("GET", "/api/candles", query=CandlesQuery, response=CandlesPage, errors=(400,), tag="charts")
async def candles(request: web.Request) -> web.Response:
    """Candles of a symbol at an interval, newest `limit` bars of [from, to), oldest first.

    Answers are shared for a few seconds between callers of the same tier (markers follow the
    tier's delay)."""
    query = parse_query(request, CandlesQuery)
    await request.app[keys.UNIVERSE].require(query.symbol)
    tier = viewer_tier(request)
    if query.from_ is not None and query.to is not None and query.from_ >= query.to:
        raise BadInput("`from` must be before `to`")

    return web.Response(body=await page_json(request, query, tier), content_type="application/json")


async def page_json(request: web.Request, query: CandlesQuery, tier: Tier) -> bytes:
    """The JSON answer to a (validated) candles query, shared for a few seconds between callers
    of the same tier: the API route's body, and the chart page's first candles inline."""

    async def build() -> bytes:
        return await _page_json(request, query, tier)

    key = f"candles:{tier.value}:{query.symbol}:{query.interval}:{query.from_}:{query.to}:{query.limit}"
    return await request.app[keys.ANSWERS].get(key, CACHE_SECONDS, build)
