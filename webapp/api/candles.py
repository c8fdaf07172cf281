"""GET /api/candles: OHLCV of one symbol at 1m…1d, aggregated from `candles_1m` in SQL, with
the markers of the alerts that fired in the range (the caller's tier window applied)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from db import alert_feed
from db.candles import TIMEFRAMES, Candle, fetch_candles
from volspike.errors import BadInput
from volspike.tiers import feed_window
from webapp import keys
from webapp.api.models import CandleBar, CandlesPage, CandlesQuery, Marker
from webapp.api.spec import API, parse_query, respond
from webapp.api.viewer import viewer_tier


def bar(candle: Candle) -> CandleBar:
    return CandleBar(
        t=int(candle.open_time.timestamp()),
        o=candle.open,
        h=candle.high,
        l=candle.low,
        c=candle.close,
        v=candle.quote_volume,
    )


def candle_range(
    query_from: int | None, query_to: int | None, step: timedelta, limit: int, now: datetime
) -> tuple[datetime, datetime]:
    """[start, end) of a request: `to` defaults to now, `from` to `limit` bars before `to`."""
    end = datetime.fromtimestamp(query_to, UTC) if query_to is not None else now + step
    start = datetime.fromtimestamp(query_from, UTC) if query_from is not None else end - step * (limit + 1)
    if start >= end:
        raise BadInput("`from` must be before `to`")
    return start, end


@API.route("GET", "/api/candles", query=CandlesQuery, response=CandlesPage, errors=(400,), tag="charts")
async def candles(request: web.Request) -> web.Response:
    """Candles of a symbol at an interval, newest `limit` bars of [from, to), oldest first."""
    query = parse_query(request, CandlesQuery)
    await request.app[keys.UNIVERSE].require(query.symbol)
    step = TIMEFRAMES[query.interval]
    now = request.app[keys.CLOCK].now()
    start, end = candle_range(query.from_, query.to, step, query.limit, now)
    pool = request.app[keys.POOL]
    rows = await fetch_candles(pool, query.symbol, query.interval, start, end, query.limit)
    markers: list[Marker] = []
    if rows:
        window = feed_window(viewer_tier(request), now)
        found = await alert_feed.markers(
            pool,
            query.symbol,
            rows[0].open_time,
            end,
            visible_until=window.visible_until,
            types=window.types,
        )
        markers = [Marker(t=int(r["detected_at"].timestamp()), type=r["alert_type"]) for r in found]
    return respond(
        CandlesPage(
            symbol=query.symbol, interval=query.interval, candles=[bar(c) for c in rows], markers=markers
        )
    )
