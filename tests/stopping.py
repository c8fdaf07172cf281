"""Stopping a service task in a test: bounded, and loud about what would not stop."""

from __future__ import annotations

import asyncio
import contextlib
import io


def _stacks() -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        print(f"--- {task.get_name()}: {task.get_coro()!r}", file=out)
        task.print_stack(limit=12, file=out)
    return out.getvalue()


async def stop_within(task: asyncio.Task[object], seconds: float, what: str) -> None:
    """Cancel `task` and wait for it to end; fail, with every task's stack, if it takes longer
    than `seconds` (a plain `wait_for` would wait forever for a task that will not end)."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        stacks = _stacks()
        raise AssertionError(f"{what} did not stop within {seconds:g} s; tasks still running:\n{stacks}")
    with contextlib.suppress(asyncio.CancelledError):
        task.result()
