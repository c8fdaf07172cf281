"""Two ingest shards side by side (`INGEST_SHARD=0/2` and `1/2`): simulator over real HTTP and
websockets, real PostgreSQL and Redis. Each follows its own symbols; together they follow all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis

from core.redis_names import RedisNames
from core.settings import Settings
from core.shard import Shard
from ingest.service import run_ingest
from simulator.server import SimServer
from tests import test_ingest_service as single
from tests.stopping import stop_within
from tests.test_ingest_service import FAST, HOUR_MS, MINUTE_MS, closed_candles_cover, followed, poll, spikes


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(single.market()) as server:  # the market of test_ingest_service
        yield server


@pytest.fixture
def ingest_settings(settings: Settings, sim: SimServer) -> Settings:
    return single.settings_for(settings, sim)


SHARDS = (Shard(0, 2), Shard(1, 2))
ALL_FOLLOWED = 9  # the sim's 8 perpetuals + the non-ASCII one (see test_ingest_service)


@contextlib.asynccontextmanager
async def shards(settings: Settings, pool: asyncpg.Pool, redis: Redis, *which: Shard) -> AsyncIterator[None]:
    tasks = [
        asyncio.create_task(
            run_ingest(settings.model_copy(update={"ingest_shard": str(s)}), pool, redis, **FAST)
        )
        for s in which
    ]
    try:
        yield
    finally:
        for task in tasks:
            await stop_within(task, 10, "ingest shard")


async def snapshot(redis: Redis, names: RedisNames, shard: Shard) -> dict[str, Any] | None:
    raw = await redis.get(names.ingest_shard_health(shard))
    return None if raw is None else orjson.loads(raw)


async def all_armed(redis: Redis, names: RedisNames, *which: Shard) -> None:
    async def check() -> bool:
        snaps = [await snapshot(redis, names, s) for s in which]
        return all(s is not None and s.get("ok") and s.get("armed") for s in snaps)

    await poll(check, 30, "every shard armed and healthy")


async def test_two_shards_split_the_symbols_and_together_cover_all(
    ingest_settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, sim: SimServer
) -> None:
    async with shards(ingest_settings, db, redis, *SHARDS):
        await all_armed(redis, names, *SHARDS)
        symbols = await followed(db)
        assert len(symbols) == ALL_FOLLOWED
        for shard in SHARDS:
            snap = await snapshot(redis, names, shard)
            assert snap is not None and snap["shard"] == str(shard)
            assert snap["symbols"] == sum(shard.owns(s) for s in symbols) > 0
        assert await redis.get(names.ingest_health) is None  # no unsharded snapshot

        async def market_complete() -> bool:
            return {k.decode() for k in await redis.hkeys(names.market)} == set(symbols)

        await poll(market_complete, 20, "the market hash has every shard's symbols")
        hour = sim.now_ms() - sim.now_ms() % HOUR_MS
        target = sim.now_ms() - sim.now_ms() % MINUTE_MS - 2 * MINUTE_MS
        await poll(lambda: closed_candles_cover(db, symbols, hour - HOUR_MS, target), 30, "every candle")

        picked = [next(s for s in symbols if shard.owns(s) and s.isascii()) for shard in SHARDS]
        for symbol in picked:
            sim.trigger_spike(symbol, 6.0, min_quote_volume=ingest_settings.spike_min_quote_volume * 2)

        async def both_spiked() -> bool:
            return all([await spikes(db, s) for s in picked])

        await poll(both_spiked, 20, "a SPIKE in each shard")
        await asyncio.sleep(1.0)  # more frames of the same spikes arrive meanwhile
        for symbol in picked:
            assert len(await spikes(db, symbol)) == 1, symbol
        assert sorted(m.decode() for m in await redis.hkeys(names.ingest_shards)) == ["0/2", "1/2"]


async def test_only_shard_zero_keeps_the_symbols_table(
    ingest_settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, sim: SimServer
) -> None:
    async with shards(ingest_settings, db, redis, SHARDS[1]):
        await all_armed(redis, names, SHARDS[1])
        snap = await snapshot(redis, names, SHARDS[1])
        assert snap is not None and snap["symbols"] > 0
        assert await followed(db) == []  # shard 1 follows its symbols but does not write the table
    async with shards(ingest_settings, db, redis, SHARDS[0]):
        await all_armed(redis, names, SHARDS[0])
        assert len(await followed(db)) == ALL_FOLLOWED
