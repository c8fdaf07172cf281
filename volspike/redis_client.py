"""One Redis client factory with a bounded, clear connection failure."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from volspike.errors import ServiceUnreachable

log = logging.getLogger(__name__)


def redis_host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


async def create_redis(url: str, *, attempts: int = 5) -> Redis:
    """A client that answered PING; after `attempts` failures raises ServiceUnreachable."""
    client: Redis = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30)
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
