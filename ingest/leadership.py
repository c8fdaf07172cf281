"""One leader per ingest shard: `volspike ingest` started twice with the same `INGEST_SHARD`
runs the ingest service in the process holding the shard's advisory lock (`Shard.lock_key`,
`db.leadership`); the other stands by and says so in Redis
(`RedisNames.ingest_standby_health`) until the leader dies, and then takes over.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson
from redis.asyncio import Redis

from core.redis_names import RedisNames
from core.shard import Shard
from db.leadership import Leadership
from db.unavailable import REDIS_UNAVAILABLE

log = logging.getLogger(__name__)

STANDBY_TTL = 30  # seconds the standby's health snapshot lives


async def lead_shard(
    database_url: str, shard: Shard, redis: Redis, names: RedisNames, lead: Callable[[], Awaitable[None]]
) -> None:
    """Until cancelled: run `lead()` while leading the shard, stand by otherwise."""

    async def report_standby() -> None:
        snapshot = {
            "ok": True,
            "state": "standby",
            "shard": str(shard),
            "ts": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            await redis.set(names.ingest_standby_health(shard), orjson.dumps(snapshot), ex=STANDBY_TTL)
        except REDIS_UNAVAILABLE as exc:
            log.warning("standby snapshot not written", extra={"error": repr(exc)})

    leadership = Leadership(database_url, shard.lock_key, f"ingest {shard}", on_standby=report_standby)
    await leadership.run(lead)
