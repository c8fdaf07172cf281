"""Cancellation hygiene for long-running loops.

Python 3.11's `asyncio.wait_for` (used inside asyncpg and redis-py) can swallow a cancellation
that lands just as the awaited operation completes. A service loop that then goes on awaiting
would never stop. Loops call `raise_if_cancelling()` once per turn to notice such a cancellation.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Raise CancelledError when the current task has been asked to cancel."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
