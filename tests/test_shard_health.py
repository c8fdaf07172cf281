"""Health of a sharded ingest: each shard's leader (or standby) seen by /health and healthcheck."""

from __future__ import annotations

import orjson
from aiohttp.test_utils import TestClient, TestServer

from bot.handlers.admin import find_lag_ms
from core.shard import Shard
from db.ingest_health import shards_snapshot
from volspike.healthcheck import healthcheck
from webapp.app import create_app


async def test_health_shows_every_shard_and_is_not_ok_while_one_is_missing(
    settings, pool, redis, names
) -> None:
    one, two = Shard(0, 2), Shard(1, 2)
    await redis.delete(names.ingest_health)
    await redis.hset(names.ingest_shards, mapping={str(one): 1000, str(two): 2000})
    await redis.set(names.ingest_shard_health(one), orjson.dumps({"ok": True, "shard": "0/2"}), ex=30)
    app = create_app(settings, pool=pool, redis=redis)
    async with TestClient(TestServer(app)) as client:
        body = await (await client.get("/health")).json()
        ingest = body["services"]["ingest"]
        assert ingest["ok"] is False
        assert ingest["shards"] == {
            "0/2": {"ok": True, "shard": "0/2"},
            "1/2": {"ok": False, "state": "not running"},
        }
        await redis.set(names.ingest_shard_health(two), orjson.dumps({"ok": True, "shard": "1/2"}), ex=30)
        body = await (await client.get("/health")).json()
        assert body["services"]["ingest"]["ok"] is True


async def test_healthcheck_of_a_shard_takes_its_leader_or_else_its_standby(settings, redis, names) -> None:
    shard = Shard(1, 2)
    sharded = settings.model_copy(update={"ingest_shard": str(shard)})
    assert await healthcheck(sharded, "ingest") == 1  # nobody reported
    await redis.set(names.ingest_standby_health(shard), orjson.dumps({"ok": True, "state": "standby"}), ex=30)
    assert await healthcheck(sharded, "ingest") == 0
    await redis.set(names.ingest_shard_health(shard), orjson.dumps({"ok": False, "state": "stopped"}), ex=30)
    assert await healthcheck(sharded, "ingest") == 1  # the leader's own word wins
    await redis.set(names.ingest_health, orjson.dumps({"ok": True}), ex=30)
    assert await healthcheck(sharded, "ingest") == 1  # another shard count's key is not this shard's


async def test_shards_snapshot_shows_the_latest_count_and_ignores_a_malformed_member(redis, names) -> None:
    await redis.delete(names.ingest_shards)
    assert await shards_snapshot(redis, names) is None
    await redis.hset(names.ingest_shards, mapping={"0/3": 1000, "not-a-shard": 3000, "1/2": 500})
    lag = {"ok": True, "connections": [{"lag_ms": 1500.0}]}
    await redis.set(names.ingest_shard_health(Shard(0, 3)), orjson.dumps(lag), ex=30)
    # 1/2 was written before the latest 0/3: a shard of the old count, not shown
    assert await shards_snapshot(redis, names) == {"ok": True, "shards": {"0/3": lag}}
    assert find_lag_ms(await shards_snapshot(redis, names)) == 1500.0  # the admin /health reads it
