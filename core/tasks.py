"""Cancellation hygiene for long-running loops.

Python 3.11's `asyncio.wait_for` (used inside asyncpg and redis-py) can swallow a cancellation
that lands just as the awaited operation completes. A service loop that then goes on awaiting
would never stop. Loops call `raise_if_cancelling()` once per turn to notice such a cancellation.

At shutdown, work running in tasks of its own (aiogram handles each update in one) gets a bounded
time to finish before what it uses is closed: `finish_or_cancel`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

CANCEL_GRACE = 1.0  # seconds a cancelled task gets to unwind (its `finally` blocks)


def raise_if_cancelling() -> None:
    """Raise CancelledError when the current task has been asked to cancel."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def finish_or_cancel(tasks: Collection[asyncio.Task[Any]], timeout: float) -> int:
    """Wait up to `timeout` seconds for `tasks`, then cancel those still running and give them
    `CANCEL_GRACE` to end, so that none goes on using what the caller closes next (a task still
    calling through an aiogram Bot after its session closed opens a new, never closed, one).
    Returns how many were cancelled."""
    if not tasks:
        return 0
    pending: set[asyncio.Task[Any]] = set(tasks)
    try:
        _, pending = await asyncio.wait(tasks, timeout=timeout)
    finally:
        for task in pending:
            task.cancel()  # also when the wait itself is cancelled: nothing is left running
    if pending:
        await asyncio.wait(pending, timeout=CANCEL_GRACE)
    return len(pending)
