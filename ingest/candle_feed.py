"""Live candle updates for the Mini App's charts: the forming (and just closed) 1m kline of
each symbol, published on the Redis pub/sub channel `names.candles_channel`.

Throttled per symbol: `update()` only keeps the newest kline of each open time, and `run()`
publishes what changed once per `min_interval` (one pipeline), so a symbol costs at most one
message per interval however many frames arrive, and a closed kline is never overwritten by
the next minute's first frame. Best effort, like the live alert channel: a Redis error drops
that round's updates (the next frame brings the candle again) and is logged.

Message (the /ws `candle` message as is; `t` open time in unix seconds, `v` quote volume)::

    {"type": "candle", "symbol": "BTCUSDT",
     "candle": {"t": 1700000040, "o": 1.0, "h": 1.2, "l": 0.9, "c": 1.1, "v": 123456.7},
     "closed": false}
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.redis_names import RedisNames
from core.tasks import raise_if_cancelling
from ingest.parsers import Kline

log = logging.getLogger(__name__)


def candle_message(kline: Kline) -> bytes:
    return orjson.dumps(
        {
            "type": "candle",
            "symbol": kline.symbol,
            "candle": {
                "t": kline.open_time_ms // 1000,
                "o": kline.open,
                "h": kline.high,
                "l": kline.low,
                "c": kline.close,
                "v": kline.quote_volume,
            },
            "closed": kline.closed,
        }
    )


class CandleFeed:
    def __init__(self, redis: Redis, names: RedisNames, *, min_interval: float = 1.0) -> None:
        self._redis = redis
        self._channel = names.candles_channel
        self.min_interval = min_interval
        self._pending: dict[tuple[str, int], Kline] = {}

    def update(self, kline: Kline) -> None:
        """Keep the newest frame of this symbol's minute (1m klines only)."""
        if kline.interval == "1m":
            self._pending[(kline.symbol, kline.open_time_ms)] = kline

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Publish every pending update, oldest minute first; how many were published."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        pipe = self._redis.pipeline(transaction=False)
        for key in sorted(pending, key=lambda k: k[1]):
            pipe.publish(self._channel, candle_message(pending[key]))
        await pipe.execute()
        return len(pending)

    async def run(self) -> None:
        """Flush every `min_interval` seconds until cancelled."""
        while True:
            raise_if_cancelling()
            await asyncio.sleep(self.min_interval)
            try:
                await self.flush()
            except (RedisError, OSError) as exc:
                log.warning("candle updates not published", extra={"error": repr(exc)})
