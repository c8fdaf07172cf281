"""Telegram's sending limits as one shared, priority-aware limiter.

- a global budget of `rate` messages per second (slots spaced 1/rate apart, with a small
  catch-up allowance so event-loop jitter does not cost throughput);
- per chat: one message per second in a private chat, 20 per minute in a group or channel;
- `rate_limited(chat_id, seconds)` (a `TelegramRetryAfter`) pauses that chat for `seconds`; when
  several different chats get one within a short window, Telegram is limiting the bot as a whole
  and `pause(seconds)` stops ALL sending until it has passed;
- low-priority callers (broadcasts) only take a slot while no high-priority caller (alerts) waits;
- with a `paid_rate`, messages sent with `allow_paid_broadcast` (`acquire(..., paid=True)`) take
  their slots from a budget of their own, `paid_rate` per second beside the free `rate`: Telegram
  lets them go out at up to 1000 per second (each one over the free 30 per second costs 0.1 Stars).
  Per-chat limits and RetryAfter pauses apply to them as to every message.

Time is the event loop's monotonic clock: these are real-time limits of the Telegram API,
unlike the due times of deliveries, which follow the injected product clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.tasks import raise_if_cancelling

PRIVATE_INTERVAL = 1.0  # seconds between two messages to one private chat
GROUP_INTERVAL = 3.0  # 20 messages per minute in a group or channel
CATCH_UP = 0.05  # seconds of unused budget a late waiter may reclaim
_CHAT_MEMORY = 120.0  # forget per-chat state this long after its last message
GLOBAL_429_CHATS = 3  # this many different chats answered 429 ...
GLOBAL_429_WINDOW = 10.0  # ... within this many seconds: the bot as a whole is being limited
# Messages per second sent with allow_paid_broadcast: under Telegram's 1000 per second for all of
# a bot's messages, with room for the free budget and the catch-up allowance.
PAID_BROADCAST_RATE = 900.0


class RateLimiter:
    def __init__(
        self,
        rate: float,
        *,
        paid_rate: float = 0.0,
        private_interval: float = PRIVATE_INTERVAL,
        group_interval: float = GROUP_INTERVAL,
        time: Callable[[], float] | None = None,
    ) -> None:
        if rate <= 0 or paid_rate < 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.paid_rate = paid_rate
        self._spacing = 1.0 / rate
        self._paid_spacing = 1.0 / paid_rate if paid_rate else self._spacing
        self._private_interval = private_interval
        self._group_interval = group_interval
        self._time = time or asyncio.get_running_loop().time
        self._next_global = 0.0
        self._next_paid = 0.0
        self._paused_until = 0.0
        self._next_chat: dict[int, float] = {}
        self._chat_paused_until: dict[int, float] = {}
        self._recent_429: dict[int, float] = {}  # chat → when it last answered 429
        self._high_waiting = 0
        self._high_idle = asyncio.Event()
        self._high_idle.set()
        self._last_sweep = 0.0

    # -- state -------------------------------------------------------------------------

    @property
    def total_rate(self) -> float:
        """Messages per second when both budgets are in use."""
        return self.rate + self.paid_rate

    @property
    def paused_for(self) -> float:
        """Seconds until a RetryAfter pause ends (0 when not paused)."""
        return max(0.0, self._paused_until - self._time())

    @property
    def paused_until(self) -> float:
        """When the last all-sending pause ends, on the event loop's clock (0: never paused)."""
        return self._paused_until

    @property
    def backlog(self) -> float:
        """Seconds of global budget already promised to waiters."""
        return max(0.0, self._next_global - self._time())

    def chat_paused_for(self, chat_id: int) -> float:
        """Seconds until a RetryAfter pause of this one chat ends (0 when not paused)."""
        return max(0.0, self._chat_paused_until.get(chat_id, 0.0) - self._time())

    def rate_limited(self, chat_id: int, seconds: float) -> bool:
        """Telegram answered 429 with `retry_after=seconds` to a message for `chat_id`: pause that
        chat. Returns True when this made it the bot as a whole (all sending paused)."""
        now = self._time()
        until = now + seconds
        self._chat_paused_until[chat_id] = max(until, self._chat_paused_until.get(chat_id, 0.0))
        self._next_chat[chat_id] = max(until, self._next_chat.get(chat_id, 0.0))
        self._recent_429[chat_id] = now
        for chat in [c for c, at in self._recent_429.items() if at < now - GLOBAL_429_WINDOW]:
            del self._recent_429[chat]
        if len(self._recent_429) >= GLOBAL_429_CHATS:
            self.pause(seconds)
            return True
        return False

    def pause(self, seconds: float) -> None:
        """Stop all sending for `seconds` from now (Telegram's `retry_after`)."""
        until = self._time() + seconds
        if until > self._paused_until:
            self._paused_until = until
        self._next_global = max(self._next_global, self._paused_until)
        self._next_paid = max(self._next_paid, self._paused_until)

    # -- acquiring ---------------------------------------------------------------------

    async def acquire(
        self, chat_id: int, *, group: bool = False, low_priority: bool = False, paid: bool = False
    ) -> None:
        """Wait until a message to `chat_id` may be sent now; `paid`: it carries
        `allow_paid_broadcast` and takes its slot from the paid budget (when there is one)."""
        if low_priority:
            while self._high_waiting:
                await self._high_idle.wait()
        else:
            self._high_waiting += 1
            self._high_idle.clear()
        try:
            await self._wait_chat(chat_id, group)
            await self._wait_budget(paid and self.paid_rate > 0)
            # The chat's next message counts from now, when this one may go out, not from when it
            # passed the chat's gate: a wait for the global budget must not shorten the spacing.
            interval = self._group_interval if group else self._private_interval
            self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0), self._time() + interval)
        finally:
            if not low_priority:
                self._high_waiting -= 1
                if not self._high_waiting:
                    self._high_idle.set()

    async def _wait_chat(self, chat_id: int, group: bool) -> None:
        now = self._time()
        ready = max(now, self._next_chat.get(chat_id, 0.0))
        self._next_chat[chat_id] = ready + (self._group_interval if group else self._private_interval)
        self._forget_old_chats(now)
        if ready > now:
            await asyncio.sleep(ready - now)

    async def _wait_budget(self, paid: bool) -> None:
        spacing = self._paid_spacing if paid else self._spacing
        while True:
            raise_if_cancelling()
            now = self._time()
            slot = max(self._next_paid if paid else self._next_global, now - CATCH_UP, self._paused_until)
            if paid:
                self._next_paid = slot + spacing
            else:
                self._next_global = slot + spacing
            if slot > now:
                await asyncio.sleep(slot - now)
            if self._time() >= self._paused_until:
                return
            # A pause began while we slept for our slot: queue again behind it.

    def _forget_old_chats(self, now: float) -> None:
        if now - self._last_sweep < _CHAT_MEMORY:
            return
        self._last_sweep = now
        cutoff = now - self._group_interval
        for chat_id in [c for c, t in self._next_chat.items() if t < cutoff]:
            del self._next_chat[chat_id]
        for chat_id in [c for c, t in self._chat_paused_until.items() if t < now]:
            del self._chat_paused_until[chat_id]
