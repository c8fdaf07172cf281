"""GET /api/markets: every tracked perpetual from the live market state in Redis.

Free and pro see a snapshot refreshed every 15 and 5 minutes (kept in Redis with that TTL,
so every webapp process shows the same one); elite sees the live table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from core.tiers import Tier
from db import watchlists as watchlists_db
from db.live_state import read_market
from webapp import keys
from webapp.api.models import Market, MarketsPage
from webapp.api.spec import API, respond
from webapp.api.viewer import viewer_tier
from webapp.auth import current_user

REFRESH_SECONDS = {Tier.FREE: 900, Tier.PRO: 300, Tier.ELITE: 0}


async def market_table(request: web.Request, tier: Tier) -> tuple[dict[str, dict[str, Any]], datetime]:
    """The table the tier sees and when it was taken."""
    redis, names = request.app[keys.REDIS], request.app[keys.NAMES]
    now = request.app[keys.CLOCK].now()
    refresh = REFRESH_SECONDS[tier]
    if refresh == 0:
        return await read_market(redis, names), now
    key = names.market_snapshot(tier.value)
    cached = await redis.get(key)
    if cached is not None:
        snapshot = orjson.loads(cached)
        return snapshot["rows"], datetime.fromisoformat(snapshot["at"])
    rows = await read_market(redis, names)
    at = now.astimezone(UTC)
    await redis.set(key, orjson.dumps({"at": at.isoformat(), "rows": rows}), ex=refresh, nx=True)
    return rows, at


@API.route("GET", "/api/markets", response=MarketsPage, tag="markets")
async def markets(request: web.Request) -> web.Response:
    """Every tracked perpetual: price, 24 h change, this hour's quote volume, ratio, funding."""
    tier = viewer_tier(request)
    rows, at = await market_table(request, tier)
    assets = await request.app[keys.UNIVERSE].assets()
    user = current_user(request)
    watched = (
        set() if user is None else set(await watchlists_db.list_symbols(request.app[keys.POOL], user.id))
    )
    items = [
        Market(
            symbol=symbol,
            asset=assets.get(symbol, symbol.removesuffix("USDT")),
            price=row.get("price"),
            change24h=row.get("change24h"),
            hour_quote_volume=row.get("hourVolume"),
            ratio=row.get("ratio"),
            funding_rate=row.get("fundingRate"),
            watched=symbol in watched,
        )
        for symbol, row in sorted(rows.items())
        if symbol in assets
    ]
    return respond(MarketsPage(markets=items, updated_at=at, refresh_seconds=REFRESH_SECONDS[tier]))
