"""The bot's health snapshot in Redis (`names.bot_health`), read by the webapp's `/health`.

`problem()` names what stops the bot from doing its job (the sender stopped because Telegram
rejected the token); the snapshot then says `ok: false`, `state: "stopped"` and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.alerts import iso_utc
from core.clock import Clock
from core.redis_names import RedisNames
from core.tasks import raise_if_cancelling

log = logging.getLogger(__name__)

INTERVAL = 10.0
TTL_SECONDS = 30


def snapshot(mode: str, username: str | None, clock: Clock, problem: str | None = None) -> bytes:
    state: dict[str, object] = {"ok": True, "state": "running"}
    if problem is not None:
        state = {"ok": False, "state": "stopped", "error": problem}
    return orjson.dumps({**state, "mode": mode, "bot": username, "at": iso_utc(clock.now())})


async def run_heartbeat(
    redis: Redis,
    names: RedisNames,
    *,
    mode: str,
    username: str | None,
    clock: Clock,
    interval: float = INTERVAL,
    problem: Callable[[], str | None] = lambda: None,
    changed: asyncio.Event | None = None,
) -> None:
    """Refresh the snapshot every `interval` seconds (and at once when `changed` is set) until
    cancelled; then remove it."""
    changed = changed or asyncio.Event()
    try:
        while True:
            raise_if_cancelling()
            changed.clear()
            try:
                await redis.set(names.bot_health, snapshot(mode, username, clock, problem()), ex=TTL_SECONDS)
            except (RedisError, OSError) as exc:
                log.warning("bot heartbeat not written", extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), interval)
    finally:
        try:
            await redis.delete(names.bot_health)
        except (RedisError, OSError) as exc:
            log.debug("bot heartbeat not removed", extra={"error": str(exc)})
