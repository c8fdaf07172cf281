"""Short-lived answers shared by every webapp process (Redis) and by concurrent requests of
one process (single flight): many traders open the same chart at once, and 500 hourly bars
aggregated from 30,000 minutes cost far more to compute than to copy.

An entry lives a few seconds; a chart's forming bar moves on over /ws meanwhile. A copy is
also kept in process memory (bounded to `LOCAL_ENTRIES`): fresh for `LOCAL_SECONDS`, which saves
the Redis round trip for the hottest answers, and servable for the entry's whole `ttl` while one
request refreshes it, so the other requests of that moment do not queue behind a rebuild (stale
by at most `ttl`, like the Redis copy). When Redis does not answer, the answer is computed (and
the failure logged), never refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.redis_names import RedisNames

log = logging.getLogger(__name__)

LOCAL_SECONDS = 1.0
LOCAL_ENTRIES = 512


class AnswerCache:
    def __init__(self, redis: Redis, names: RedisNames) -> None:
        self._redis = redis
        self._names = names
        self._inflight: dict[str, asyncio.Future[bytes]] = {}
        self._local: dict[str, tuple[float, float, bytes]] = {}  # fresh until, servable until, body

    def clear_local(self) -> None:
        """Forget the in-process copies (tests that change data under a cached key)."""
        self._local.clear()

    async def get(self, key: str, ttl: int, build: Callable[[], Awaitable[bytes]]) -> bytes:
        """The cached bytes of `key`, or `build()`'s, stored for `ttl` seconds."""
        now = time.monotonic()
        local = self._local.get(key)
        if local is not None and local[0] > now:
            return local[2]
        pending = self._inflight.get(key)
        if pending is not None:
            if local is not None and local[1] > now:
                return local[2]  # another request is refreshing it
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            body = await self._fetch_or_build(key, ttl, build)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters, if any, re-raise it
            raise
        else:
            future.set_result(body)
            if len(self._local) >= LOCAL_ENTRIES:
                self._local = {k: v for k, v in self._local.items() if v[1] > now}
                if len(self._local) >= LOCAL_ENTRIES:
                    self._local.clear()
            self._local[key] = (now + min(LOCAL_SECONDS, ttl), now + ttl, body)
            return body
        finally:
            del self._inflight[key]

    async def _fetch_or_build(self, key: str, ttl: int, build: Callable[[], Awaitable[bytes]]) -> bytes:
        redis_key = self._names.answer_cache(key)
        try:
            hit = await self._redis.get(redis_key)
        except (RedisError, OSError) as exc:
            log.warning("answer cache unavailable", extra={"error": repr(exc)})
            return await build()
        if isinstance(hit, bytes):
            return hit
        body = await build()
        try:
            await self._redis.set(redis_key, body, ex=ttl)
        except (RedisError, OSError) as exc:
            log.warning("answer not cached", extra={"error": repr(exc)})
        return body
