"""Crash loops, as /health reports them: the supervisor's restarts, kept in Redis.

`volspike run` hands `reporter(redis, names)` to the supervisor: each restart of a service writes
`{"in_a_row", "at_ms", "error"}` into the hash `RedisNames.service_crashes`. A service is
*crash-looping* while it has crashed `LOOP_AFTER` times in a row and the latest crash is younger
than `LOOP_WINDOW_MS` (longer than the supervisor's longest backoff, so a service that keeps
dying never looks healthy between two restarts; once it has run that long without crashing, it
no longer counts). Writing is best effort: without Redis the restart is only logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.redis_names import RedisNames
from core.supervisor import RESTART_CAP, CrashReport

log = logging.getLogger(__name__)

LOOP_AFTER = 3
LOOP_WINDOW_MS = int(3 * RESTART_CAP * 1000)
KEEP_SECONDS = 86_400


def reporter(redis: Redis, names: RedisNames) -> CrashReport:
    async def report(service: str, in_a_row: int, error: str) -> None:
        value = orjson.dumps({"in_a_row": in_a_row, "at_ms": int(time.time() * 1000), "error": error[:300]})
        try:
            pipe = redis.pipeline(transaction=False)
            pipe.hset(names.service_crashes, service, value)
            pipe.expire(names.service_crashes, KEEP_SECONDS)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("service crash not recorded: redis unavailable", extra={"error": repr(exc)})

    return report


async def crash_loops(redis: Redis, names: RedisNames, now_ms: int) -> dict[str, dict[str, Any]]:
    """Service → its latest crash, for the services crash-looping now. Redis errors are the caller's."""
    looping: dict[str, dict[str, Any]] = {}
    for field, raw in (await redis.hgetall(names.service_crashes)).items():
        try:
            crash = orjson.loads(raw)
            name = field.decode() if isinstance(field, bytes) else str(field)
            in_a_row, at_ms = int(crash["in_a_row"]), int(crash["at_ms"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if in_a_row >= LOOP_AFTER and now_ms - at_ms < LOOP_WINDOW_MS:
            looping[name] = {"restarts_in_a_row": in_a_row, "last_error": crash.get("error")}
    return looping
