"""`volspike healthcheck SERVICE`: exit 0 when that service reports healthy (the container health check).

`webapp` and `run` ask the local webapp's `GET /health` (200 only when PostgreSQL and Redis
answer); `ingest` and `bot` have no port, so their health is the snapshot each writes to Redis
with a short TTL (the same one `/health` shows): present and `ok` means healthy. For `ingest`
that is the snapshot of the leader of its `INGEST_SHARD`, or else of a standby for it.
"""

from __future__ import annotations

import aiohttp
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.redis_names import RedisNames
from core.settings import Settings

SERVICES = ("run", "webapp", "ingest", "bot")
TIMEOUT = 5.0


async def _webapp(settings: Settings) -> str | None:
    url = f"http://127.0.0.1:{settings.webapp_port}/health"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http,
            http.get(url) as response,
        ):
            return None if response.status == 200 else f"{url} answered {response.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{url} does not answer ({type(exc).__name__})"


async def _snapshot(settings: Settings, service: str) -> str | None:
    names = RedisNames(settings.redis_prefix)
    key = names.ingest_shard_health(settings.shard) if service == "ingest" else names.bot_health
    client: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    try:
        raw = await client.get(key)
        if raw is None and service == "ingest":  # no leader's snapshot: a standby's will do
            raw = await client.get(names.ingest_standby_health(settings.shard))
    except (RedisError, OSError) as exc:
        return f"Redis does not answer ({type(exc).__name__})"
    finally:
        await client.aclose()
    if raw is None:
        return f"{service} has not reported in time (no {key})"
    state = orjson.loads(raw)
    return None if state.get("ok") else f"{service} reports {state.get('state', 'not ok')}"


async def healthcheck(settings: Settings, service: str) -> int:
    problem = await (_webapp(settings) if service in ("run", "webapp") else _snapshot(settings, service))
    print(f"{service}: {problem or 'healthy'}")
    return 1 if problem else 0
