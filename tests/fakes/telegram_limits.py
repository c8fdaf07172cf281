"""Telegram's broadcast limits and the Stars paid broadcasts cost, as the look-alike enforces them.

Telegram (Bot API, "Paid Broadcasts"): a bot broadcasts up to 30 messages per second for free; with
Paid Broadcasts a message sent with `allow_paid_broadcast` may go out at up to 1000 messages per
second, and "each message broadcasted over the free amount of 30 messages per second incurs a cost
of 0.1 Stars", taken from the bot's balance; only messages delivered successfully are charged.
The look-alike's model of that, over a sliding one-second window of delivered messages:

- a message without the flag is refused with 429 (`retry_after`) while 30 messages without the flag
  were delivered in the last second;
- a message with the flag is refused while 1000 messages of any kind were delivered in the last
  second;
- a delivered message with the flag is billed (0.1 Stars) when 30 or more messages of any kind were
  delivered in the second before it: it is over the free amount.

Billed messages enter the bot's Star ledger (`FakeStars`, `getStarTransactions`) as one outgoing
transaction to `{"type": "telegram_api", "request_count": n}` each time the ledger is read, the way
Telegram reports paid broadcasts (TransactionPartnerTelegramApi).
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

FREE_PER_SECOND = 30
PAID_PER_SECOND = 1000
NANOSTARS_PER_MESSAGE = 100_000_000  # 0.1 Stars
WINDOW = 1.0


@dataclass
class BroadcastLimits:
    free_per_second: int = FREE_PER_SECOND
    paid_per_second: int = PAID_PER_SECOND
    retry_after: int = 1
    refused: int = 0  # 429s answered
    billed: int = 0  # messages charged, in total
    peak: int = 0  # most messages delivered within one second
    _all: collections.deque[float] = field(default_factory=collections.deque)
    _free: collections.deque[float] = field(default_factory=collections.deque)
    _unledgered: int = 0

    @property
    def billed_nanostars(self) -> int:
        return self.billed * NANOSTARS_PER_MESSAGE

    def refuse(self, paid: bool, now: float | None = None) -> int | None:
        """Before delivering: the `retry_after` of a 429, or None when the message may go."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        full = len(self._all) >= self.paid_per_second if paid else len(self._free) >= self.free_per_second
        if full:
            self.refused += 1
            return self.retry_after
        return None

    def delivered(self, paid: bool, now: float | None = None) -> None:
        """A message was delivered: count it, and bill it when it is over the free amount."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        if paid and len(self._all) >= self.free_per_second:
            self.billed += 1
            self._unledgered += 1
        self._all.append(now)
        if not paid:
            self._free.append(now)
        self.peak = max(self.peak, len(self._all))

    def take_unledgered(self) -> int:
        """Billed messages not yet in a ledger transaction (and from now on, in one)."""
        count, self._unledgered = self._unledgered, 0
        return count

    def _expire(self, now: float) -> None:
        for window in (self._all, self._free):
            while window and window[0] <= now - WINDOW:
                window.popleft()
