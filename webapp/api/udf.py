"""The TradingView UDF datafeed (for the Charting Library, which speaks UDF):
`/udf/config`, `/udf/symbols`, `/udf/search`, `/udf/history`, `/udf/time`.

Public, cached in Redis for a few seconds (every webapp process shares the cache), and
rate-limited per IP by the security middleware. Bars come from `candles_1m` through the same
SQL aggregation as /api/candles. UDF reports its own errors in the body
(`{"s": "error", "errmsg": …}`, HTTP 200), as the library expects; a query that does not parse
(a missing or non-numeric parameter, a time past `LATEST_TIME`) gets the same body with HTTP 400,
which the library also shows as an error.

History semantics: bars with `from <= t < to`; `countback`, when given, wins over `from`
(the newest `countback` bars before `to`); an empty range with older bars is
`{"s": "no_data", "nextTime": <open time of the newest older bar>}`, with none `{"s": "no_data"}`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, Field, RootModel, ValidationError

from db.candle_range import newest_before
from db.candles import TIMEFRAMES, fetch_bars
from webapp import keys
from webapp.api.models import LATEST_TIME
from webapp.api.spec import API

log = logging.getLogger(__name__)

CACHE_SECONDS = 5
EXCHANGE = "BINANCE"
MAX_BARS = 5000
RESOLUTIONS = {"1": "1m", "5": "5m", "15": "15m", "60": "1h", "240": "4h", "1D": "1d", "D": "1d"}
SUPPORTED_RESOLUTIONS = ["1", "5", "15", "60", "240", "1D"]


class UdfConfig(BaseModel):
    supported_resolutions: list[str]
    supports_search: bool
    supports_group_request: bool
    supports_marks: bool
    supports_timescale_marks: bool
    supports_time: bool
    exchanges: list[dict[str, str]]
    symbols_types: list[dict[str, str]]


class UdfSymbolQuery(BaseModel):
    symbol: str = Field(max_length=60)


class UdfSymbol(BaseModel):
    name: str
    ticker: str
    description: str
    type: str
    session: str
    exchange: str
    listed_exchange: str
    timezone: str
    format: str
    minmov: int
    pricescale: int
    has_intraday: bool
    has_daily: bool
    supported_resolutions: list[str]
    volume_precision: int
    data_status: str


class UdfSearchQuery(BaseModel):
    query: str = Field("", max_length=60)
    type: str = ""
    exchange: str = ""
    limit: int = Field(30, ge=1, le=100)


class UdfSearchItem(BaseModel):
    symbol: str
    full_name: str
    description: str
    exchange: str
    ticker: str
    type: str


class UdfSearchResult(RootModel[list[UdfSearchItem]]):
    """The matches, as a JSON array."""


class UdfHistoryQuery(BaseModel):
    symbol: str = Field(max_length=60)
    resolution: str
    from_: int = Field(alias="from", ge=0, le=LATEST_TIME)
    to: int = Field(ge=0, le=LATEST_TIME)
    countback: int | None = Field(None, ge=1, le=MAX_BARS)


class UdfHistory(BaseModel):
    s: Literal["ok", "no_data", "error"]
    t: list[int] | None = None
    o: list[float] | None = None
    h: list[float] | None = None
    l: list[float] | None = None  # noqa: E741 - the UDF's name for low
    c: list[float] | None = None
    v: list[float] | None = None
    nextTime: int | None = None
    errmsg: str | None = None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(message: str) -> dict[str, Any]:
    return {"s": "error", "errmsg": message}


async def _cached(request: web.Request, build: Callable[[], Awaitable[Any]]) -> web.Response:
    """The answer from the shared cache, or built and cached for CACHE_SECONDS."""

    async def encoded() -> bytes:
        return orjson.dumps(await build())

    body = await request.app[keys.ANSWERS].get(request.path_qs[:300], CACHE_SECONDS, encoded)
    return web.Response(body=body, content_type="application/json")


def _ticker(symbol: str) -> str:
    return symbol.strip().upper().rsplit(":", 1)[-1]


@API.route("GET", "/udf/config", response=UdfConfig, auth="public", tag="udf")
async def udf_config(request: web.Request) -> web.Response:
    """UDF datafeed configuration."""
    return _json(
        UdfConfig(
            supported_resolutions=SUPPORTED_RESOLUTIONS,
            supports_search=True,
            supports_group_request=False,
            supports_marks=False,
            supports_timescale_marks=False,
            supports_time=True,
            exchanges=[{"value": EXCHANGE, "name": "Binance", "desc": "Binance USDⓈ-M perpetual futures"}],
            symbols_types=[{"name": "Perpetual futures", "value": "crypto"}],
        ).model_dump()
    )


async def _symbol_info(request: web.Request, symbol: str) -> dict[str, Any]:
    row = (await request.app[keys.UNIVERSE].rows()).get(symbol)
    if row is None:
        return _error(f"unknown symbol {symbol[:30]}")
    precision = row.price_precision if row.price_precision is not None else 8
    return UdfSymbol(
        name=row.symbol,
        ticker=row.symbol,
        description=f"{row.base_asset} / {row.quote_asset} perpetual",
        type="crypto",
        session="24x7",
        exchange=EXCHANGE,
        listed_exchange=EXCHANGE,
        timezone="Etc/UTC",
        format="price",
        minmov=1,
        pricescale=10 ** min(precision, 12),
        has_intraday=True,
        has_daily=True,
        supported_resolutions=SUPPORTED_RESOLUTIONS,
        volume_precision=2,
        data_status="streaming",
    ).model_dump()


@API.route("GET", "/udf/symbols", query=UdfSymbolQuery, response=UdfSymbol, auth="public", tag="udf")
async def udf_symbols(request: web.Request) -> web.Response:
    """UDF symbol resolve (`BTCUSDT` or `BINANCE:BTCUSDT`)."""
    try:
        query = UdfSymbolQuery.model_validate(dict(request.query))
    except ValidationError:
        return _json(_error("symbol is required"))
    symbol = _ticker(query.symbol)
    return await _cached(request, lambda: _symbol_info(request, symbol))


async def _search(request: web.Request, query: UdfSearchQuery) -> list[dict[str, Any]]:
    if query.exchange and query.exchange.upper() != EXCHANGE:
        return []
    if query.type and query.type != "crypto":
        return []
    text = _ticker(query.query) if query.query else ""
    rows = (await request.app[keys.UNIVERSE].rows()).values()
    exact = [r for r in rows if r.symbol.startswith(text) or r.base_asset.startswith(text)]
    inside = [r for r in rows if text in r.symbol and r not in exact]
    return [
        UdfSearchItem(
            symbol=r.symbol,
            full_name=f"{EXCHANGE}:{r.symbol}",
            description=f"{r.base_asset} / {r.quote_asset} perpetual",
            exchange=EXCHANGE,
            ticker=r.symbol,
            type="crypto",
        ).model_dump()
        for r in (exact + inside)[: query.limit]
    ]


@API.route("GET", "/udf/search", query=UdfSearchQuery, response=UdfSearchResult, auth="public", tag="udf")
async def udf_search(request: web.Request) -> web.Response:
    """UDF symbol search: a JSON array of matches."""
    try:
        query = UdfSearchQuery.model_validate(dict(request.query))
    except ValidationError:
        return _json([])
    return await _cached(request, lambda: _search(request, query))


async def _history(request: web.Request, query: UdfHistoryQuery) -> dict[str, Any]:
    symbol = _ticker(query.symbol)
    timeframe = RESOLUTIONS.get(query.resolution)
    if timeframe is None:
        return _error(f"unsupported resolution {query.resolution[:10]}")
    if symbol not in await request.app[keys.UNIVERSE].assets():
        return _error(f"unknown symbol {symbol[:30]}")
    if query.countback is None and query.from_ >= query.to:
        return _error("from must be before to")
    step = TIMEFRAMES[timeframe]
    end = datetime.fromtimestamp(query.to, UTC)
    if query.countback is not None:
        start = end - step * (query.countback + 1)
        limit = query.countback
    else:
        start = datetime.fromtimestamp(query.from_, UTC)
        limit = MAX_BARS
    pool = request.app[keys.POOL]
    bars = await fetch_bars(pool, symbol, timeframe, start, end, limit)
    if query.countback is None:
        bars = bars.since(query.from_)  # the bucket holding `from` may start before it
    if not bars.t:
        older = await newest_before(pool, symbol, start)
        if older is None:
            return {"s": "no_data"}
        seconds = int(step.total_seconds())
        return {"s": "no_data", "nextTime": int(older.timestamp()) // seconds * seconds}
    return {"s": "ok", "t": bars.t, "o": bars.o, "h": bars.h, "l": bars.l, "c": bars.c, "v": bars.v}


@API.route("GET", "/udf/history", query=UdfHistoryQuery, response=UdfHistory, auth="public", tag="udf")
async def udf_history(request: web.Request) -> web.Response:
    """UDF bars of a symbol: `ok` with columns, `no_data` (with `nextTime`), or `error`."""
    try:
        query = UdfHistoryQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        message = f"bad {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return _json(_error(message), status=400)
    return await _cached(request, lambda: _history(request, query))


@API.route("GET", "/udf/time", auth="public", tag="udf")
async def udf_time(request: web.Request) -> web.Response:
    """Server time, unix seconds, as plain text."""
    return web.Response(text=str(int(request.app[keys.CLOCK].now().timestamp())))
