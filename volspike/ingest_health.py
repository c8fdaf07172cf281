"""The health of a sharded ingest (`INGEST_SHARD=i/n`), as `/health` and the admin `/health` show it.

Each shard's leader writes its own snapshot (`RedisNames.ingest_shard_health`) and adds its shard
to the set `RedisNames.ingest_shards`; together they are ok when every shard in the set is.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from volspike.redis_names import RedisNames
from volspike.shard import Shard

NOT_RUNNING: dict[str, Any] = {"ok": False, "state": "not running"}


def _loads(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


async def shards_snapshot(redis: Redis, names: RedisNames) -> dict[str, Any] | None:
    """`{"ok": every shard ok, "shards": {"i/n": snapshot}}`, or None when no shard ever reported.
    Redis errors are the caller's."""
    shards: dict[str, Any] = {}
    for member in sorted(await redis.smembers(names.ingest_shards)):
        text = member.decode() if isinstance(member, bytes) else str(member)
        try:
            shard = Shard.parse(text)
        except ValueError:
            continue
        shards[text] = _loads(await redis.get(names.ingest_shard_health(shard))) or dict(NOT_RUNNING)
    if not shards:
        return None
    return {"ok": all(bool(s.get("ok")) for s in shards.values()), "shards": shards}
