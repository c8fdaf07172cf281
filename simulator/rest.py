"""REST: /fapi/v1/... with Binance's errors, request weights and rate limits."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError
from multidict import MultiMapping

from .clock import SimClock
from .faults import Faults
from .market import INTERVALS, Market
from .payloads import exchange_info, kline_row, open_interest, open_interest_stat, premium_index, ticker_24h
from .universe import MINUTE_MS

OPEN_INTEREST_HIST = "/futures/data/openInterestHist"
OPEN_INTEREST_PERIODS = {
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "6h": 360,
    "12h": 720,
    "1d": 1440,
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def klines_weight(limit: int) -> int:
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def request_weight(path: str, query: MultiMapping[str]) -> int:
    if path == "/fapi/v1/klines":
        try:
            limit = int(query.get("limit", "500"))
        except ValueError:
            limit = 500
        return klines_weight(limit)
    if path == "/fapi/v1/ticker/24hr":
        return 1 if query.get("symbol") else 40
    if path == "/fapi/v1/premiumIndex":
        return 1 if query.get("symbol") else 10
    if path == OPEN_INTEREST_HIST:
        return 0  # the USDⓈ-M page's weight: /futures/data has its own request limit
    return 1


@dataclass(frozen=True, slots=True)
class Admission:
    status: int  # 200: go ahead; 429/418: refused
    used: int
    retry_after: int


class WeightLimiter:
    """REQUEST_WEIGHT per real-time minute. Past the limit: 429 with Retry-After until the next
    minute; a client that keeps hammering after ``ban_after`` refusals gets a 418 ban."""

    def __init__(
        self,
        limit: int,
        *,
        ban_after: int = 5,
        ban_seconds: float = 120.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self._wall = wall
        self._window = -1
        self._used = 0
        self._refusals = 0
        self._banned_until = 0.0

    def _roll(self, now: float) -> None:
        window = int(now // 60)
        if window != self._window:
            self._window = window
            self._used = 0
            self._refusals = 0

    @property
    def used(self) -> int:
        self._roll(self._wall())
        return self._used

    def admit(self, weight: int) -> Admission:
        now = self._wall()
        self._roll(now)
        if now < self._banned_until:
            return Admission(418, self._used, math.ceil(self._banned_until - now))
        if self._used + weight > self.limit:
            self._refusals += 1
            if self._refusals > self.ban_after:
                self._banned_until = now + self.ban_seconds
                return Admission(418, self._used, math.ceil(self.ban_seconds))
            return Admission(429, self._used, max(1, math.ceil((self._window + 1) * 60 - now)))
        self._used += weight
        return Admission(200, self._used, 0)

    def reset(self) -> None:
        self._window = -1
        self._banned_until = 0.0


def _too_many(status: int, limit: int, retry_after: int) -> web.Response:
    if status == 418:
        msg = f"Way too much request weight used; IP banned until {int((time.time() + retry_after) * 1000)}."
        msg += " Please use the websocket for live updates to avoid bans."
    else:
        msg = f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE."
        msg += " Please use the websocket for live updates to avoid polling the API."
    return json_response(
        {"code": -1003, "msg": msg}, status=status, headers={"Retry-After": str(retry_after)}
    )


def unknown_path(request: web.Request) -> web.Response:
    """What Binance answers for a path (or a method on it) it does not serve: 404 with code -5000,
    e.g. ``{"code": -5000, "msg": "Path /fapi/v1/positionRisk, Method GET is invalid"}``."""
    return json_response(
        {"code": -5000, "msg": f"Path {request.path}, Method {request.method} is invalid"}, status=404
    )


class RestApi:
    def __init__(
        self,
        market: Market,
        clock: SimClock,
        faults: Faults,
        limiter: WeightLimiter,
        *,
        log_size: int = 10_000,
    ) -> None:
        self.market = market
        self.clock = clock
        self.faults = faults
        self.limiter = limiter
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._warming = asyncio.Lock()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/fapi/v1/ping", self.ping),
            web.get("/fapi/v1/time", self.time),
            web.get("/fapi/v1/exchangeInfo", self.exchange_info),
            web.get("/fapi/v1/klines", self.klines),
            web.get("/fapi/v1/ticker/24hr", self.ticker_24h),
            web.get("/fapi/v1/premiumIndex", self.premium_index),
            web.get("/fapi/v1/openInterest", self.open_interest),
            web.get(OPEN_INTEREST_HIST, self.open_interest_hist),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(("/fapi/", "/futures/")):
            if isinstance(request.match_info, MatchInfoError):
                return unknown_path(request)
            return await handler(request)
        weight = request_weight(request.path, request.query)
        sim_time = self.clock.now_ms()  # when it arrived, in exchange time (tests recompute answers)
        forced = self.faults.take_rest_error()
        path_fault = self.faults.take_path_fault(request.path)
        if path_fault is not None and path_fault.stall > 0:
            await asyncio.sleep(path_fault.stall)  # a hung exchange: the client's timeout decides
        response: web.StreamResponse
        if path_fault is not None and path_fault.status is not None:
            response = json_response(
                {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."},
                status=path_fault.status,
            )
            used = self.limiter.used
        elif forced is not None:
            response = _too_many(forced.status, self.limiter.limit, forced.retry_after)
            used = self.limiter.used
        else:
            admission = self.limiter.admit(weight)
            used = admission.used
            if admission.status != 200:
                response = _too_many(admission.status, self.limiter.limit, admission.retry_after)
            else:
                try:
                    if isinstance(request.match_info, MatchInfoError):
                        response = unknown_path(request)
                    else:
                        response = await handler(request)
                except BinanceError as e:
                    response = json_response({"code": e.code, "msg": e.msg}, status=e.status)
                except web.HTTPException as e:
                    response = json_response({"code": -1000, "msg": e.reason}, status=e.status)
        response.headers[WEIGHT_HEADER] = str(used)
        self.log.append(
            {
                "path": request.path,
                "params": dict(request.query),
                "time": time.time(),
                "status": response.status,
                "weight": weight,
                "sim_time": sim_time,
            }
        )
        return response

    # ------------------------------------------------------------------ helpers
    def _symbol(self, query: MultiMapping[str], required: bool = True) -> str | None:
        symbol = query.get("symbol")
        if not symbol:
            if required:
                raise BinanceError(
                    -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
                )
            return None
        if self.market.get(symbol) is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return symbol

    @staticmethod
    def _int(query: MultiMapping[str], name: str) -> int | None:
        raw = query.get(name)
        if raw is None or raw == "":
            return None
        if not raw.isdigit() or len(raw) > 20:
            raise BinanceError(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
            )
        return int(raw)

    # ------------------------------------------------------------------ endpoints
    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": self.clock.now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return json_response(exchange_info(self.market.symbols(), self.clock.now_ms(), self.limiter.limit))

    async def klines(self, request: web.Request) -> web.Response:
        q = request.query
        symbol = self._symbol(q)
        assert symbol is not None
        interval = q.get("interval")
        if not interval:
            raise BinanceError(
                -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
            )
        if interval not in INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        limit = self._int(q, "limit")
        if limit is None:
            limit = 500
        if limit < 1 or limit > 1500:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        start = self._int(q, "startTime")
        end = self._int(q, "endTime")
        if start is not None and end is not None and start > end:
            raise BinanceError(-1023, "Start time is greater than end time.")
        now = self.clock.now_ms()
        info = self.market.get(symbol)
        assert info is not None
        candles = self.market.klines(symbol, interval, now, start_ms=start, end_ms=end, limit=limit)
        return json_response([kline_row(info, c) for c in candles])

    async def ticker_24h(self, request: web.Request) -> web.Response:
        """The aggregate of the last 1,440 1m klines. Their closed part is computed in a worker
        thread (seconds for hundreds of symbols the first time), so streams keep flowing."""
        symbol = self._symbol(request.query, required=False)
        now = self.clock.now_ms()
        self.market.apply_due(now)
        if symbol is not None:
            info = self.market.get(symbol)
            assert info is not None
            infos = [info]
        else:
            infos = [i for i in self.market.symbols() if i.trades_at(now - 1)]
        async with self._warming:  # one warm-up at a time: a retried request waits for it
            await asyncio.to_thread(self.market.warm_day, [i.symbol for i in infos], now)
        tickers = [ticker_24h(self.market, i, now) for i in infos]
        return json_response(tickers[0] if symbol is not None else tickers)

    async def open_interest(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request.query)
        assert symbol is not None
        info = self.market.get(symbol)
        assert info is not None
        return json_response(open_interest(self.market, info, self.clock.now_ms()))

    async def open_interest_hist(self, request: web.Request) -> web.Response:
        """Rows at each `period` boundary in [startTime, endTime] (default: the latest `limit`
        up to now), oldest first; only the last 30 days and only since the listing."""
        q = request.query
        symbol = self._symbol(q)
        assert symbol is not None
        info = self.market.get(symbol)
        assert info is not None
        period = q.get("period")
        if not period:
            raise BinanceError(
                -1102, "Mandatory parameter 'period' was not sent, was empty/null, or malformed."
            )
        if period not in OPEN_INTEREST_PERIODS:
            raise BinanceError(-1120, "Invalid period.")
        limit = self._int(q, "limit")
        limit = 30 if limit is None else limit
        if limit < 1 or limit > 500:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        start, end = self._int(q, "startTime"), self._int(q, "endTime")
        step = OPEN_INTEREST_PERIODS[period] * MINUTE_MS
        now = self.clock.now_ms()
        last = min(now if end is None else end, now) // step * step
        first = max(now - 30 * 24 * 60 * MINUTE_MS, -(-info.onboard_ms // step) * step)
        if start is not None:
            first = max(first, -(-start // step) * step)
            times = list(range(first, last + 1, step))[:limit]
        else:
            times = list(range(first, last + 1, step))[-limit:]
        return json_response([open_interest_stat(self.market, info, t) for t in times])

    async def premium_index(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request.query, required=False)
        now = self.clock.now_ms()
        if symbol is not None:
            info = self.market.get(symbol)
            assert info is not None
            return json_response(premium_index(self.market, info, now))
        return json_response(
            [premium_index(self.market, i, now) for i in self.market.symbols() if i.trades_at(now - 1)]
        )
