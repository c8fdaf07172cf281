"""Keep services running in one process: a service that crashes is restarted, the others go on.

`supervise` runs each service (a factory that returns a fresh coroutine, so it can be started
again) in a task of its own. A service that raises, or returns although it should run forever, is
logged and restarted after a capped, growing backoff (reset once it has run for `stable_after`
seconds). Each restart is reported to `on_crash` (service, crashes in a row since it last ran
`stable_after` seconds, the error): `volspike run` keeps it in Redis for /health. Only a
`ConfigError` (a bad setting: restarting cannot fix it) stops everything and is raised to the
caller, which exits. Cancelling `supervise` cancels every service and waits up to
`grace` seconds for them to stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from core.backoff import Backoff
from core.errors import ConfigError
from core.tasks import raise_if_cancelling

log = logging.getLogger(__name__)

ServiceFactory = Callable[[], Coroutine[Any, Any, None]]
CrashReport = Callable[[str, int, str], Awaitable[None]]

RESTART_FIRST = 1.0
RESTART_CAP = 60.0
STABLE_AFTER = 60.0
GRACE = 10.0


async def supervise(
    services: dict[str, ServiceFactory],
    *,
    restart_first: float = RESTART_FIRST,
    restart_cap: float = RESTART_CAP,
    stable_after: float = STABLE_AFTER,
    grace: float = GRACE,
    on_crash: CrashReport | None = None,
) -> None:
    """Run every service until cancelled, restarting crashed ones; raises the first ConfigError."""
    tasks = [
        asyncio.create_task(
            _keep_running(name, factory, Backoff(restart_first, restart_cap), stable_after, on_crash),
            name=name,
        )
        for name, factory in services.items()
    ]
    log.info("services started", extra={"services": sorted(services)})
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:  # only a ConfigError ends a runner
            task.result()
    finally:
        await _stop_all(tasks, grace)


async def _keep_running(
    name: str, factory: ServiceFactory, backoff: Backoff, stable_after: float, on_crash: CrashReport | None
) -> None:
    loop = asyncio.get_running_loop()
    restarts = 0
    in_a_row = 0
    while True:
        raise_if_cancelling()
        started = loop.time()
        try:
            await factory()
        except ConfigError:
            raise
        # The supervisor's job: any crash of a service is restarted (only bad settings are final).
        except Exception as exc:  # noqa: BLE001 - see the comment above
            failure: str = repr(exc)
            exc_info: BaseException | None = exc
        else:
            failure, exc_info = "returned", None
        if loop.time() - started >= stable_after:
            backoff.reset()
            in_a_row = 0
        restarts += 1
        in_a_row += 1
        delay = backoff.next_delay()
        log.error(
            "service stopped; restarting it",
            extra={"service": name, "error": failure, "restarts": restarts, "retry_in": round(delay, 2)},
            exc_info=exc_info,
        )
        if on_crash is not None:
            await on_crash(name, in_a_row, failure)
        await asyncio.sleep(delay)


async def _stop_all(tasks: list[asyncio.Task[None]], grace: float) -> None:
    for task in tasks:
        task.cancel()
    _, pending = await asyncio.wait(tasks, timeout=grace)
    if pending:
        log.error("services did not stop in time", extra={"services": [t.get_name() for t in pending]})
    for task in tasks:
        if task.done() and not task.cancelled():
            exc = task.exception()
            if exc is not None and not isinstance(exc, ConfigError):
                log.debug("service ended with an error during shutdown", exc_info=exc)
