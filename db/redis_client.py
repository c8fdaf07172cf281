"""One Redis client factory with a bounded, clear connection failure."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.errors import ServiceUnreachable

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 200
POOL_WAIT = 10.0


def redis_host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


async def create_redis(url: str, *, attempts: int = 5) -> Redis:
    """A client that answered PING; after `attempts` failures raises ServiceUnreachable.

    Its pool blocks (up to `POOL_WAIT` s) when all `MAX_CONNECTIONS` are busy instead of
    failing at once: a burst of webapp requests queues for a connection rather than erring."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT,
        socket_connect_timeout=3,
        socket_timeout=10,
        health_check_interval=30,
    )
    client: Redis = Redis.from_pool(pool)  # the client owns the pool and closes it
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            await client.ping()
            return client
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if attempt == attempts:
                await client.aclose()
                raise ServiceUnreachable(f"cannot reach Redis at {redis_host_port(url)}") from exc
            log.warning("redis not answering, retrying", extra={"attempt": attempt, "error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")
