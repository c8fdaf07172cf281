"""The health of a sharded ingest (`INGEST_SHARD=i/n`), as `/health` and the admin `/health` show it.

Each shard's leader writes its own snapshot (`RedisNames.ingest_shard_health`) and the time of it
in the hash `RedisNames.ingest_shards` (shard → epoch ms). The shards shown are those with the
`n` of the latest write, so after a change of `n` the old shards drop out by themselves; together
they are ok when every one of them is.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from core.redis_names import RedisNames
from core.shard import Shard

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
    written: dict[Shard, int] = {}
    for field, value in (await redis.hgetall(names.ingest_shards)).items():
        try:
            text = field.decode() if isinstance(field, bytes) else str(field)
            written[Shard.parse(text)] = int(value)
        except ValueError:
            continue
    if not written:
        return None
    count = max(written, key=written.__getitem__).count
    shards: dict[str, Any] = {}
    for shard in sorted((s for s in written if s.count == count), key=lambda s: s.index):
        shards[str(shard)] = _loads(await redis.get(names.ingest_shard_health(shard))) or dict(NOT_RUNNING)
    if not shards:
        return None
    return {"ok": all(bool(s.get("ok")) for s in shards.values()), "shards": shards}
