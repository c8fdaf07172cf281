"""The live market table in Redis: one hash `names.market`, symbol → JSON, rewritten at most
once a second with only the symbols that changed (one HSET).

JSON value of each symbol (camelCase, like the alert JSON; absent values are null)::

    {"symbol": "BTCUSDT", "price": 97123.4, "change24h": -1.23, "quoteVolume24h": 1.2e10,
     "hourVolume": 5.0e8, "prevHourVolume": 1.5e8, "ratio": 3.33, "fundingRate": 0.0001,
     "markPrice": 97120.0, "updatedAt": 1700000000000}

`updatedAt` is the exchange event time (ms) of the latest change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.redis_names import RedisNames
from core.tasks import raise_if_cancelling

log = logging.getLogger(__name__)


class Snapshot(Protocol):
    """What `LiveState.update` reads of one symbol (ingest's `SymbolSnapshot`)."""

    @property
    def symbol(self) -> str: ...
    @property
    def current_volume(self) -> float: ...
    @property
    def previous_volume(self) -> float: ...
    @property
    def ratio(self) -> float: ...
    @property
    def price(self) -> float | None: ...
    @property
    def mark_price(self) -> float | None: ...
    @property
    def funding_rate(self) -> float | None: ...
    @property
    def event_time_ms(self) -> int: ...


FIELDS = (
    "price",
    "change24h",
    "quoteVolume24h",
    "hourVolume",
    "prevHourVolume",
    "ratio",
    "fundingRate",
    "markPrice",
    "updatedAt",
)


class LiveState:
    """Collects per-symbol live values from ingest; `flush()` writes the changed ones."""

    def __init__(
        self,
        redis: Redis,
        names: RedisNames,
        *,
        min_interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._names = names
        self.min_interval = min_interval
        self._monotonic = monotonic
        self._values: dict[str, dict[str, Any]] = {}
        self._changed: set[str] = set()
        self._removed: set[str] = set()
        self._last_flush: float | None = None

    def _entry(self, symbol: str) -> dict[str, Any]:
        entry = self._values.get(symbol)
        if entry is None:
            entry = self._values[symbol] = dict.fromkeys(FIELDS)
            entry["symbol"] = symbol
            self._removed.discard(symbol)
        self._changed.add(symbol)
        return entry

    def update(self, snap: Snapshot) -> None:
        """Hour volumes, ratio, price, mark and funding from `SpikeDetector.snapshot()`."""
        entry = self._entry(snap.symbol)
        entry["hourVolume"] = snap.current_volume
        entry["prevHourVolume"] = snap.previous_volume
        entry["ratio"] = round(snap.ratio, 4)
        if snap.price is not None:
            entry["price"] = snap.price
        if snap.mark_price is not None:
            entry["markPrice"] = snap.mark_price
        if snap.funding_rate is not None:
            entry["fundingRate"] = snap.funding_rate
        entry["updatedAt"] = snap.event_time_ms

    def set_price(self, symbol: str, price: float, event_time_ms: int | None = None) -> None:
        entry = self._entry(symbol)
        entry["price"] = price
        if event_time_ms is not None:
            entry["updatedAt"] = event_time_ms

    def set_funding(self, symbol: str, rate: float | None, mark_price: float | None = None) -> None:
        entry = self._entry(symbol)
        if rate is not None:
            entry["fundingRate"] = rate
        if mark_price is not None:
            entry["markPrice"] = mark_price

    def set_24h(self, symbol: str, change_pct: float, quote_volume_24h: float) -> None:
        """From the 24h ticker (`parsers.Ticker`)."""
        entry = self._entry(symbol)
        entry["change24h"] = round(change_pct, 4)
        entry["quoteVolume24h"] = quote_volume_24h

    def remove(self, symbol: str) -> None:
        """A delisted symbol leaves the table at the next flush."""
        self._values.pop(symbol, None)
        self._changed.discard(symbol)
        self._removed.add(symbol)

    @property
    def dirty(self) -> int:
        return len(self._changed) + len(self._removed)

    async def flush(self, *, force: bool = False) -> int:
        """Write the changed symbols (one HSET, one HDEL for removed ones) unless the last
        write was less than `min_interval` ago; how many symbols were written.

        On a Redis error the symbols stay marked changed and the error propagates."""
        now = self._monotonic()
        if not force and self._last_flush is not None and now - self._last_flush < self.min_interval:
            return 0
        if not self._changed and not self._removed:
            return 0
        changed, removed = self._changed, self._removed
        self._changed, self._removed = set(), set()
        mapping = {symbol: orjson.dumps(self._values[symbol]) for symbol in changed}
        try:
            pipe = self._redis.pipeline(transaction=False)
            if mapping:
                pipe.hset(self._names.market, mapping=mapping)  # type: ignore[arg-type]
            if removed:
                pipe.hdel(self._names.market, *removed)
            await pipe.execute()
        except (RedisError, OSError, asyncio.CancelledError):
            self._changed |= {s for s in changed if s in self._values}
            self._removed |= removed - self._values.keys()
            raise
        self._last_flush = now
        return len(mapping)

    async def run(self) -> None:
        """Flush every `min_interval` seconds until cancelled; Redis errors are logged and retried."""
        while True:
            raise_if_cancelling()
            await asyncio.sleep(self.min_interval)
            try:
                await self.flush()
            except (RedisError, OSError) as exc:
                log.warning("market state not written", extra={"pending": self.dirty, "error": repr(exc)})


async def read_market(redis: Redis, names: RedisNames) -> dict[str, dict[str, Any]]:
    """The whole market table (one HGETALL): symbol → its JSON value as a dict."""
    raw: dict[bytes | str, bytes | str] = await redis.hgetall(names.market)
    return {(k.decode() if isinstance(k, bytes) else k): orjson.loads(v) for k, v in raw.items()}
