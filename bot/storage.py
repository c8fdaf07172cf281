"""FSM storage in the shared Redis client, under the prefix's `fsm` namespace."""

from __future__ import annotations

from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis

from core.redis_names import RedisNames

STATE_TTL_SECONDS = 3600  # an abandoned "type your time zone" prompt expires


class SharedRedisStorage(RedisStorage):
    """RedisStorage that does not close the client on shutdown: the composition root owns it."""

    def __init__(self, redis: Redis, names: RedisNames) -> None:
        super().__init__(
            redis,
            key_builder=DefaultKeyBuilder(prefix=names.fsm, with_bot_id=True),
            state_ttl=STATE_TTL_SECONDS,
            data_ttl=STATE_TTL_SECONDS,
        )

    async def close(self) -> None:
        return None
