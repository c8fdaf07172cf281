"""More webapp processes on one port (`WEBAPP_WORKERS`, Linux): every process binds
`WEBAPP_PORT` with SO_REUSEPORT and the kernel spreads new connections between them.

The process that runs `volspike webapp` (or `run`) serves too and starts the other
`WEBAPP_WORKERS - 1`, each a fresh interpreter (spawn) serving only the webapp with its own
PostgreSQL pool and Redis connection, under a supervisor of its own. Everything a request needs
that two processes share lives in PostgreSQL or Redis (rate limits, the answer cache, web
sessions), and each process's /ws hub has its own Redis subscription, so a live alert or
candle reaches the sockets of every process. The workers are stopped with the webapp service,
and a worker whose parent has gone (killed with SIGKILL) stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as EventType
from typing import Any

from core.settings import Settings

log = logging.getLogger(__name__)

Serve = Callable[..., Coroutine[Any, Any, None]]
"""`webapp.app.run_webapp` (with what the composition root bound to it): what a worker runs. Handed
in by the caller (it must pickle: a module-level function or a partial of one), so this module
does not import the app that starts it."""

PARENT_CHECK = 1.0  # seconds between two looks at whether the parent is still there
STOP_TIMEOUT = 15.0  # a worker's graceful stop, then SIGKILL
START_TIMEOUT = 60.0  # from spawn until a worker has bound the port


def reuse_port(settings: Settings) -> bool | None:
    """SO_REUSEPORT only when several processes share the port (one process keeps the default:
    a second, forgotten server on the same port is then an error, not half the traffic)."""
    return True if settings.webapp_workers > 1 else None


@contextlib.asynccontextmanager
async def extra_workers(settings: Settings, serve: Serve) -> AsyncIterator[list[SpawnProcess]]:
    """Start the `webapp_workers - 1` other processes and wait (up to START_TIMEOUT) until
    each has bound the port; on exit SIGTERM them and wait."""
    context = multiprocessing.get_context("spawn")
    ready = [context.Event() for _ in range(1, settings.webapp_workers)]
    processes = [
        context.Process(
            target=worker_main, args=(settings, os.getpid(), event, serve), name=f"webapp-{n}", daemon=True
        )
        for n, event in enumerate(ready, start=1)
    ]
    for process in processes:
        process.start()
    try:
        for event in ready:
            if not await asyncio.to_thread(event.wait, START_TIMEOUT):
                log.error("a webapp worker is not listening", extra={"timeout": START_TIMEOUT})
        if processes:
            log.info("webapp workers listening", extra={"pids": [p.pid for p in processes]})
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.to_thread(process.join, STOP_TIMEOUT)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join)


def worker_main(settings: Settings, parent: int, ready: EventType, serve: Serve) -> None:
    """A worker process: the webapp alone until SIGTERM/SIGINT or until its parent is gone."""
    from core.logs import setup_logging

    setup_logging(settings.log_level)
    asyncio.run(_serve(settings, parent, ready, serve))


async def _serve(settings: Settings, parent: int, ready: EventType, serve: Serve) -> None:
    from core.supervisor import supervise
    from db.pool import create_pool
    from db.redis_client import create_redis

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pool = await create_pool(settings.database_url, max_size=8)
    try:
        redis = await create_redis(settings.redis_url)
        try:
            webapp = {"webapp": lambda: serve(settings, pool, redis, primary=False, listening=ready.set)}
            served = asyncio.create_task(supervise(webapp))
            while not stop.is_set() and os.getppid() == parent and not served.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), PARENT_CHECK)
            served.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await served
        finally:
            await redis.aclose()
    finally:
        await pool.close()
