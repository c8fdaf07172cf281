"""GET /api/markets: every tracked perpetual from the live market state in Redis.

Free and pro see a snapshot refreshed every 15 and 5 minutes (kept in Redis with that TTL,
so every webapp process shows the same one); elite sees the live table.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import TypeAdapter
from redis.asyncio import Redis

from core.redis_names import RedisNames
from core.tiers import Tier
from db import watchlists as watchlists_db
from db.live_state import read_market
from webapp import keys
from webapp.api.models import Market, MarketsPage
from webapp.api.spec import API
from webapp.api.viewer import viewer_tier
from webapp.auth import current_user

REFRESH_SECONDS = {Tier.FREE: 900, Tier.PRO: 300, Tier.ELITE: 0}
# Ingest rewrites the live table at most once a second (db.live_state): a process reads it from
# Redis at most that often, and the other requests of that second share the read.
LIVE_SECONDS = 1.0


Rows = dict[str, dict[str, Any]]
_Items = tuple[Rows, dict[str, str], list["Market"], list[bytes]]  # table, universe, items, their JSON


class MarketTables:
    """Per process: the live table (read from Redis at most every LIVE_SECONDS of the app's
    clock, one read for the requests of that moment) and, for each table a tier sees, its
    `Market` items built once (600 symbols: parsing HGETALL's 1,200 fields and validating 600
    items cost about 15 ms of CPU, so at 100 requests a second the webapp did nothing else)."""

    def __init__(self) -> None:
        self._live: tuple[datetime, dict[str, dict[str, Any]]] | None = None
        self._reading: asyncio.Future[dict[str, dict[str, Any]]] | None = None
        self._snapshots: dict[Tier, tuple[bytes | str, dict[str, dict[str, Any]], datetime]] = {}
        self._items: dict[Tier, _Items] = {}

    async def live(self, redis: Redis, names: RedisNames, now: datetime) -> dict[str, dict[str, Any]]:
        if self._live is not None and (now - self._live[0]).total_seconds() < LIVE_SECONDS:
            return self._live[1]
        if self._reading is not None:
            return await asyncio.shield(self._reading)
        self._reading = asyncio.get_running_loop().create_future()
        try:
            rows = await read_market(redis, names)
        except BaseException as exc:
            self._reading.set_exception(exc)
            self._reading.exception()  # retrieved: waiters, if any, re-raise it
            raise
        else:
            self._live = (now, rows)
            self._reading.set_result(rows)
            return rows
        finally:
            self._reading = None

    def snapshot(self, tier: Tier, raw: bytes | str) -> tuple[dict[str, dict[str, Any]], datetime]:
        """A tier's stored snapshot, parsed once per version."""
        known = self._snapshots.get(tier)
        if known is None or known[0] != raw:
            snapshot = orjson.loads(raw)
            known = self._snapshots[tier] = (raw, snapshot["rows"], datetime.fromisoformat(snapshot["at"]))
        return known[1], known[2]

    def items(
        self, tier: Tier, rows: dict[str, dict[str, Any]], assets: dict[str, str]
    ) -> tuple[list[Market], list[bytes]]:
        """The tier's table as `Market` items (none watched) and each item's JSON, built once per
        table and universe."""
        known = self._items.get(tier)
        if known is None or known[0] is not rows or known[1] is not assets:
            built = [
                Market(
                    symbol=symbol,
                    asset=assets.get(symbol, symbol.removesuffix("USDT")),
                    price=row.get("price"),
                    change24h=row.get("change24h"),
                    hour_quote_volume=row.get("hourVolume"),
                    ratio=row.get("ratio"),
                    funding_rate=row.get("fundingRate"),
                    watched=False,
                )
                for symbol, row in sorted(rows.items())
                if symbol in assets
            ]
            encoded = [_ITEM.dump_json(m, by_alias=True) for m in built]
            known = self._items[tier] = (rows, assets, built, encoded)
        return known[2], known[3]


TABLES = web.AppKey("market_tables", MarketTables)
_ITEM = TypeAdapter(Market)


async def market_table(request: web.Request, tier: Tier) -> tuple[dict[str, dict[str, Any]], datetime]:
    """The table the tier sees and when it was taken."""
    redis, names = request.app[keys.REDIS], request.app[keys.NAMES]
    tables = request.app[TABLES]
    now = request.app[keys.CLOCK].now()
    refresh = REFRESH_SECONDS[tier]
    if refresh == 0:
        return await tables.live(redis, names, now), now
    key = names.market_snapshot(tier.value)
    cached = await redis.get(key)
    if cached is not None:
        return tables.snapshot(tier, cached)
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
    items, encoded = request.app[TABLES].items(tier, rows, assets)
    if watched:
        encoded = [
            _ITEM.dump_json(m.model_copy(update={"watched": True}), by_alias=True)
            if m.symbol in watched
            else e
            for m, e in zip(items, encoded, strict=True)
        ]
    # The page as pydantic writes it, its items spliced in already encoded (the same bytes).
    empty = MarketsPage(markets=[], updated_at=at, refresh_seconds=REFRESH_SECONDS[tier])
    page = empty.model_dump_json(by_alias=True).encode()
    head = b'{"markets":[]'
    assert page.startswith(head)
    body = b'{"markets":[' + b",".join(encoded) + b"]" + page[len(head) :]
    return web.Response(body=body, content_type="application/json")
