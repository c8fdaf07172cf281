"""Binance USDⓈ-M REST client (public market data) with a shared request-weight budget.

Binance limits each IP by request *weight* per minute (exchangeInfo `rateLimits`,
REQUEST_WEIGHT / MINUTE / 1, 2400 on the live exchange). Every response carries
`X-MBX-USED-WEIGHT-1M`, the weight the exchange has counted in the current minute; we
resynchronise our estimate from it. A 429 (too many requests) or 418 (IP banned) comes with
`Retry-After` seconds: no request at all may leave before it has passed, so the pause is
kept in the budget that every caller of the client goes through.

Weights as documented for `/fapi/v1`: exchangeInfo 1, time 1, klines by `limit`
([1,100) 1, [100,500) 2, [500,1000] 5, >1000 10), ticker/24hr 1 with a symbol and 40
without, premiumIndex 1 with a symbol and 10 without, openInterest 1; and
`/futures/data/openInterestHist` 0 (the USDⓈ-M page's figure; the /futures/data endpoints have
their own per-IP request limit instead, which an alert's one request a symbol-hour stays far under).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from core.tasks import raise_if_cancelling

log = logging.getLogger(__name__)

DEFAULT_WEIGHT_LIMIT = 2400
MAX_KLINES_LIMIT = 1500
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
WINDOW_SECONDS = 60.0


class BinanceError(Exception):
    """Any failure talking to the Binance REST API."""


class BinanceApiError(BinanceError):
    """Binance answered with its JSON error body `{"code": -1121, "msg": "Invalid symbol."}`."""

    def __init__(self, status: int, code: int | None, msg: str, path: str) -> None:
        super().__init__(f"{path}: HTTP {status} code={code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.path = path


class BinanceRateLimited(BinanceError):
    """Still answered 429/418 after every allowed attempt."""

    def __init__(self, status: int, retry_after: float, path: str) -> None:
        super().__init__(f"{path}: HTTP {status}, retry after {retry_after:.0f}s")
        self.status = status
        self.retry_after = retry_after


class BinanceUnavailable(BinanceError):
    """Timeouts, connection errors or 5xx answers after every allowed attempt."""


def klines_weight(limit: int) -> int:
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def weight_limit_from(exchange_info: Mapping[str, Any]) -> int | None:
    """The REQUEST_WEIGHT limit per minute from exchangeInfo `rateLimits`, if present."""
    for rule in exchange_info.get("rateLimits") or ():
        if not isinstance(rule, Mapping) or rule.get("rateLimitType") != "REQUEST_WEIGHT":
            continue
        try:
            limit, per = int(rule["limit"]), int(rule.get("intervalNum", 1))
        except (KeyError, TypeError, ValueError):
            continue
        seconds = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}.get(str(rule.get("interval")))
        if seconds is None or limit <= 0 or per <= 0:
            continue
        return max(1, int(limit * 60 / (seconds * per)))
    return None


class WeightBudget:
    """The request weight this process may still spend in the current minute.

    `acquire(weight, share=...)` waits until the weight fits under `share` of the limit
    (times `headroom`); background work asks for a smaller share so gap backfills always find
    room. Near the limit requests are spread over the rest of the minute instead of burst.
    `pause(seconds)` (a 429/418 `Retry-After`) stops every caller until it has passed.
    """

    def __init__(
        self,
        limit: int = DEFAULT_WEIGHT_LIMIT,
        *,
        headroom: float = 0.9,
        slow_at: float = 0.75,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._limit = limit
        self._headroom = headroom
        self._slow_at = slow_at
        self._monotonic = monotonic
        self._wall = wall
        self._window = self._window_index()
        self._used = 0
        self._inflight = 0
        self._paused_until = 0.0
        self.paused_total = 0

    @property
    def limit(self) -> int:
        return self._limit

    def set_limit(self, limit: int) -> None:
        if limit > 0 and limit != self._limit:
            log.info("request weight limit", extra={"limit": limit})
            self._limit = limit

    @property
    def used(self) -> int:
        self._roll()
        return self._used

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._monotonic())

    def _window_index(self) -> int:
        return int(self._wall() // WINDOW_SECONDS)

    def _window_left(self) -> float:
        return WINDOW_SECONDS - self._wall() % WINDOW_SECONDS

    def _roll(self) -> None:
        index = self._window_index()
        if index != self._window:
            self._window = index
            self._used = self._inflight

    async def acquire(self, weight: int, *, share: float = 1.0) -> None:
        """Wait until `weight` may be spent; then count it as in flight."""
        paced = False
        while True:
            raise_if_cancelling()
            pause = self._paused_until - self._monotonic()
            if pause > 0:
                await asyncio.sleep(min(pause, 1.0))
                continue
            self._roll()
            cap = self._limit * self._headroom * share
            if self._used + weight > cap:
                await asyncio.sleep(min(self._window_left() + 0.05, 1.0))
                continue
            if not paced and self._used >= self._limit * self._slow_at * share:
                # spread what is left evenly over the rest of the minute
                room = max(1.0, cap - self._used)
                delay = min(self._window_left() * weight / room, 2.0)
                paced = True
                if delay > 0.01:
                    await asyncio.sleep(delay)
                    continue
            self._used += weight
            self._inflight += weight
            return

    def settle(self, weight: int, used_header: int | None) -> None:
        """A request of `weight` was answered; `used_header` is X-MBX-USED-WEIGHT-1M if sent."""
        self._inflight = max(0, self._inflight - weight)
        self._roll()
        if used_header is not None:
            self._used = used_header + self._inflight

    def pause(self, seconds: float) -> None:
        until = self._monotonic() + max(0.0, seconds)
        if until > self._paused_until:
            self._paused_until = until
            self.paused_total += 1
            log.warning("binance rate limit: pausing every request", extra={"seconds": round(seconds, 1)})


class BinanceRest:
    """Public market-data endpoints of `/fapi/v1`; use as `async with BinanceRest(url) as rest:`."""

    def __init__(
        self,
        base_url: str,
        *,
        budget: WeightBudget | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        default_retry_after: float = 30.0,
        on_request: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget or WeightBudget()
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0))
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._default_retry_after = default_retry_after
        self._on_request = on_request
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BinanceRest:
        self._ensure_session()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": "volspike-ingest"}
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- endpoints ---------------------------------------------------------------------

    async def server_time(self) -> int:
        data = await self.get("/fapi/v1/time", {}, weight=1)
        return int(data["serverTime"])

    async def exchange_info(self) -> dict[str, Any]:
        data = await self.get("/fapi/v1/exchangeInfo", {}, weight=1)
        if not isinstance(data, dict):
            raise BinanceError("exchangeInfo: expected an object")
        limit = weight_limit_from(data)
        if limit is not None:
            self.budget.set_limit(limit)
        return data

    async def klines(
        self,
        symbol: str,
        interval: str = "1m",
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
        *,
        share: float = 1.0,
    ) -> list[list[Any]]:
        if not 1 <= limit <= MAX_KLINES_LIMIT:
            raise ValueError(f"klines limit must be in [1, {MAX_KLINES_LIMIT}], got {limit}")
        params: dict[str, str | int] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        data = await self.get("/fapi/v1/klines", params, weight=klines_weight(limit), share=share)
        if not isinstance(data, list):
            raise BinanceError("klines: expected an array")
        return data

    async def ticker_24hr(self, symbol: str | None = None) -> Any:
        params: dict[str, str | int] = {} if symbol is None else {"symbol": symbol}
        return await self.get("/fapi/v1/ticker/24hr", params, weight=40 if symbol is None else 1)

    async def premium_index(self, symbol: str | None = None) -> Any:
        params: dict[str, str | int] = {} if symbol is None else {"symbol": symbol}
        return await self.get("/fapi/v1/premiumIndex", params, weight=10 if symbol is None else 1)

    async def open_interest(self, symbol: str) -> Any:
        """`{"openInterest": "10659.509", "symbol": "BTCUSDT", "time": 1589437530011}`"""
        return await self.get("/fapi/v1/openInterest", {"symbol": symbol}, weight=1, share=0.5)

    async def open_interest_hist(self, symbol: str, period: str, *, start_ms: int, limit: int = 1) -> Any:
        """`[{"symbol": "BTCUSDT", "sumOpenInterest": "20403.637", "sumOpenInterestValue": "150570784.07",
        "timestamp": 1583127900000}, ...]` from `start_ms` on, oldest first."""
        params: dict[str, str | int] = {
            "symbol": symbol,
            "period": period,
            "startTime": start_ms,
            "limit": limit,
        }
        return await self.get("/futures/data/openInterestHist", params, weight=0, share=0.5)

    # --- transport ---------------------------------------------------------------------

    async def get(
        self, path: str, params: Mapping[str, str | int], *, weight: int, share: float = 1.0
    ) -> Any:
        """GET `path` inside the weight budget, with bounded retries.

        Binance error bodies raise BinanceApiError at once (they will not get better);
        429/418 pause every caller for Retry-After, then retry; timeouts, connection errors
        and 5xx retry with exponential backoff and jitter.
        """
        session = self._ensure_session()
        url = self.base_url + path
        last_error: str = ""
        for attempt in range(1, self._max_attempts + 1):
            await self.budget.acquire(weight, share=share)
            used: int | None = None
            try:
                async with session.get(url, params=params) as resp:
                    used = _used_weight(resp.headers)
                    body = await resp.read()
                    status = resp.status
                    retry_after = _retry_after(resp.headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.budget.settle(weight, None)
                last_error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "binance request failed", extra={"path": path, "attempt": attempt, "error": last_error}
                )
                await self._backoff(attempt)
                continue
            self.budget.settle(weight, used)
            if self._on_request is not None:
                self._on_request(path, status, weight)
            if status in (429, 418):
                wait = retry_after if retry_after is not None else self._default_retry_after
                self.budget.pause(wait)
                if attempt == self._max_attempts:
                    raise BinanceRateLimited(status, wait, path)
                continue
            if status >= 500:
                last_error = f"HTTP {status}"
                log.warning(
                    "binance server error", extra={"path": path, "attempt": attempt, "status": status}
                )
                await self._backoff(attempt)
                continue
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                if status >= 400:
                    raise BinanceApiError(status, None, body[:200].decode(errors="replace"), path) from None
                raise BinanceError(f"{path}: malformed JSON body") from exc
            if status >= 400:
                code, msg = _error_fields(data)
                raise BinanceApiError(status, code, msg, path)
            return data
        raise BinanceUnavailable(f"{path}: no answer after {self._max_attempts} attempts ({last_error})")

    async def _backoff(self, attempt: int) -> None:
        if attempt >= self._max_attempts:
            return
        delay = min(self._backoff_cap, self._backoff_base * 2.0 ** (attempt - 1))
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))


def _used_weight(headers: Mapping[str, str]) -> int | None:
    value = headers.get(USED_WEIGHT_HEADER)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_fields(data: Any) -> tuple[int | None, str]:
    if isinstance(data, dict):
        code = data.get("code")
        return (int(code) if isinstance(code, int | str) and str(code).lstrip("-").isdigit() else None), str(
            data.get("msg", "")
        )
    return None, str(data)[:200]
