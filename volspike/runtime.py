"""The composition root shared by `volspike ingest|bot|webapp|run`.

It opens PostgreSQL and Redis once, hands them to each service, runs the services as
tasks, and on cancellation (SIGTERM/SIGINT) stops them all within the grace period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from db.pool import create_pool
from volspike.redis_client import create_redis
from volspike.settings import Settings

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0


async def run_services(settings: Settings, *, ingest: bool, bot: bool, webapp: bool) -> int:
    pool = await create_pool(settings.database_url, max_size=12 if ingest else 8)
    try:
        redis = await create_redis(settings.redis_url)
    except BaseException:
        await pool.close()
        raise
    jobs: dict[str, Coroutine[Any, Any, None]] = {}
    try:
        if ingest:
            from ingest.service import run_ingest

            jobs["ingest"] = run_ingest(settings, pool, redis, freeze_gc=True)
        if bot:
            from bot.app import run_bot

            jobs["bot"] = run_bot(settings, pool, redis)
        elif webapp and ingest:
            log.warning("BOT_TOKEN is not set: the bot is off; ingest and webapp run")
        if webapp:
            from webapp.app import run_webapp

            jobs["webapp"] = run_webapp(settings, pool, redis)
        return await supervise(jobs)
    finally:
        await redis.aclose()
        await pool.close()


async def supervise(jobs: dict[str, Coroutine[Any, Any, None]]) -> int:
    """Run jobs until one fails or we are cancelled; then stop the rest within the grace period."""
    tasks = {asyncio.create_task(coro, name=name): name for name, coro in jobs.items()}
    log.info("services started", extra={"services": sorted(tasks.values())})
    code = 0
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                log.error("service failed", extra={"service": tasks[task]}, exc_info=exc)
                code = 1
                if not isinstance(exc, Exception):
                    raise exc
            else:
                log.error("service stopped unexpectedly", extra={"service": tasks[task]})
                code = 1
    finally:
        await _stop_all(list(tasks))
    return code


async def _stop_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
    if pending:
        log.error("services did not stop in time", extra={"services": [t.get_name() for t in pending]})
    for task in tasks:
        if task.done() and not task.cancelled():
            exc = task.exception()
            if exc is not None and not isinstance(exc, asyncio.CancelledError):
                log.debug("service ended with error during shutdown", exc_info=exc)
