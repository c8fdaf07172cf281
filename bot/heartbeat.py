"""The bot's health snapshot in Redis (`names.bot_health`), read by the webapp's `/health`."""

from __future__ import annotations

import asyncio
import logging

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from volspike.alerts import iso_utc
from volspike.clock import Clock
from volspike.redis_names import RedisNames

log = logging.getLogger(__name__)

INTERVAL = 10.0
TTL_SECONDS = 30


def snapshot(mode: str, username: str | None, clock: Clock) -> bytes:
    return orjson.dumps(
        {"ok": True, "state": "running", "mode": mode, "bot": username, "at": iso_utc(clock.now())}
    )


async def run_heartbeat(
    redis: Redis,
    names: RedisNames,
    *,
    mode: str,
    username: str | None,
    clock: Clock,
    interval: float = INTERVAL,
) -> None:
    """Refresh the snapshot every `interval` seconds until cancelled; then remove it."""
    try:
        while True:
            try:
                await redis.set(names.bot_health, snapshot(mode, username, clock), ex=TTL_SECONDS)
            except (RedisError, OSError) as exc:
                log.warning("bot heartbeat not written", extra={"error": str(exc)})
            await asyncio.sleep(interval)
    finally:
        try:
            await redis.delete(names.bot_health)
        except (RedisError, OSError) as exc:
            log.debug("bot heartbeat not removed", extra={"error": str(exc)})
