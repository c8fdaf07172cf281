"""Capped exponential backoff with jitter: how every loop waits before it retries."""

from __future__ import annotations

import asyncio
import random


class Backoff:
    """Capped exponential backoff with jitter: `first`, doubling up to `cap`; `reset()` after a
    success. One instance per loop."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self.current = first

    def reset(self) -> None:
        self.current = self.first

    def next_delay(self) -> float:
        """The delay to wait now (with ±20 % jitter), and double the next one."""
        delay = self.current
        self.current = min(self.current * 2, self.cap)
        return delay * random.uniform(0.8, 1.2)

    async def wait(self) -> float:
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay
