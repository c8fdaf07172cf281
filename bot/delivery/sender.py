"""The sender: due delivery rows → Telegram messages, within Telegram's limits, at most once.

Loop: claim due rows (elite first; `FOR UPDATE SKIP LOCKED`, so two processes never take the
same row) as `sending`, only as many as can go out soon; each row waits for the shared limiter,
is sent, and its outcome is queued for a batched write.

At most once, across crashes: a row is `sending` from just before the call until its outcome is
committed. A row still `sending` when a sender starts was in flight during a crash: it becomes
`lost` and is never sent again; `lost` rows are counted in metrics and `/stats`. We prefer a rare,
reported loss to a duplicate alert. Rows that were only waiting for the limiter when the sender
is stopped go back to `pending`, so a clean shutdown loses nothing.

Outcomes: success → `sent`; `TelegramRetryAfter` → every send pauses for `retry_after` and the
row goes back to `pending` (the attempt does not count); 403 or 400 "chat not found" → `blocked`
(the user is marked blocked, a group is disconnected), never retried; network errors and 5xx →
`pending` again after a backoff, `failed` after `max_attempts`; any other API error → `failed`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.utils.i18n import I18n

from bot.alert_message import RenderedAlert, render_alert
from bot.delivery import metrics
from bot.delivery.limiter import RateLimiter
from db import deliveries
from db.deliveries import Outcome
from volspike.alerts import Alert, AlertType
from volspike.clock import Clock
from volspike.tiers import TIERS, Tier

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_CAP = timedelta(minutes=5)
DEFAULT_LEASE = timedelta(minutes=5)  # a `sending` row older than this belongs to a dead process
_TIER_BY_PRIORITY = {limits.delivery_priority: tier for tier, limits in TIERS.items()}
_RENDER_CACHE = 256
MIN_CLAIM = 16  # rows in the first claim after the queue was empty
MAX_CLAIM_SECONDS = 0.1  # a claim holds at most this much of the global budget


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    chat_id: int
    tier: Tier
    attempts: int
    language: str
    group: bool  # a group or channel (not a private chat)
    skip_reason: str | None
    alert: Alert

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> Claimed:
        alert = Alert(
            symbol=row["symbol"],
            asset=row["asset"],
            alert_type=AlertType(row["alert_type"]),
            hour=row["hour_ts"],
            detected_at=row["detected_at"],
            current_volume=row["current_volume"],
            previous_volume=row["previous_volume"],
            ratio=row["volume_ratio"],
            price=row["price"],
            funding_rate=row["funding_rate"],
            id=row["alert_id"],
            simulated=row["simulated"],
        )
        return cls(
            id=row["id"],
            chat_id=row["chat_id"],
            tier=_TIER_BY_PRIORITY.get(row["priority"], Tier.FREE),
            attempts=row["attempts"],
            language=row["language"],
            group=row["chat_kind"] is not None,
            skip_reason=row["skip_reason"],
            alert=alert,
        )


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s, … capped at 5 minutes."""
    return min(timedelta(seconds=2**attempts), BACKOFF_CAP)


RTT_DOUBLING = 30.0


class RequestGate:
    """How many sendMessage calls may be open at once, sized by Little's law from the measured
    round trip: `rate × min_rtt`, within [8, 64]. The minimum round trip (decaying slowly so it
    can grow again) estimates the network delay without the queueing of a busy process; more calls
    in flight than that only make them all slower, the first ones included."""

    def __init__(self, rate: float, *, initial_rtt: float = 0.1) -> None:
        self.rate = rate
        self.min_rtt = initial_rtt
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._last = asyncio.get_running_loop().time()

    @property
    def limit(self) -> int:
        return max(8, min(64, math.ceil(self.rate * self.min_rtt)))

    def observe(self, rtt: float) -> None:
        now = asyncio.get_running_loop().time()
        drift = 2 ** ((now - self._last) / RTT_DOUBLING)  # an old minimum doubles every 30 s
        self._last = now
        self.min_rtt = min(rtt, self.min_rtt * drift)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        # A counter and a FIFO of futures rather than an asyncio.Condition: this runs once per
        # message, a thousand times a second.
        if self._open >= self.limit or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # the releaser counted us in
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # granted and cancelled at once: hand the slot on
                else:
                    with contextlib.suppress(ValueError):  # already skipped by a releaser
                        self._waiters.remove(waiter)
                raise
        else:
            self._open += 1
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self._open -= 1
        while self._waiters and self._open < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(None)


def default_concurrency(rate: float) -> int:
    """Rows in flight at once: about a quarter second of the budget, so a crash loses little."""
    return max(4, min(256, int(rate / 4)))


class OutcomeWriter:
    """Collects outcomes and writes them in batches; whatever is waiting is written on close."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._outcomes: list[Outcome] = []
        self._blocked_users: list[int] = []
        self._dead_chats: list[int] = []
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def add(self, outcome: Outcome, *, blocked_user: int | None = None, dead_chat: int | None = None) -> None:
        self._outcomes.append(outcome)
        if blocked_user is not None:
            self._blocked_users.append(blocked_user)
        if dead_chat is not None:
            self._dead_chats.append(dead_chat)
        self._idle.clear()
        self._ready.set()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            await self.flush()

    async def flush(self) -> None:
        self._ready.clear()
        if not self._outcomes:
            self._idle.set()
            return
        outcomes, users, chats = self._outcomes, self._blocked_users, self._dead_chats
        self._outcomes, self._blocked_users, self._dead_chats = [], [], []
        try:
            async with self._pool.acquire() as conn:
                await deliveries.resolve(conn, outcomes, blocked_users=users, dead_chats=chats)
        except BaseException:
            # Not written (cancelled or the database failed): keep them for the next flush.
            self._outcomes[:0], self._blocked_users[:0], self._dead_chats[:0] = outcomes, users, chats
            self._ready.set()
            raise
        if not self._outcomes:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


class Sender:
    def __init__(
        self,
        bot: Bot,
        pool: asyncpg.Pool,
        i18n: I18n,
        limiter: RateLimiter,
        *,
        clock: Clock,
        webapp_url: str | None,
        concurrency: int | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        lease: timedelta = DEFAULT_LEASE,
        poll_interval: float = 0.5,
    ) -> None:
        self.bot = bot
        self.pool = pool
        self.i18n = i18n
        self.limiter = limiter
        self.clock = clock
        self.webapp_url = webapp_url
        self.concurrency = concurrency or default_concurrency(limiter.rate)
        self.max_claim = max(MIN_CLAIM, int(limiter.rate * MAX_CLAIM_SECONDS))
        self.max_attempts = max_attempts
        self.lease = lease
        self.poll_interval = poll_interval
        self.writer = OutcomeWriter(pool)
        self._wake = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._in_flight = 0
        self.requests = RequestGate(limiter.rate)
        self._renders: dict[tuple[int | None, str, Tier, bool], RenderedAlert] = {}

    def wake(self) -> None:
        """New deliveries may be due: look now instead of at the next poll."""
        self._wake.set()

    async def recover(self) -> int:
        """Start-up: rows left `sending` by a crash become `lost` (never re-sent)."""
        async with self.pool.acquire() as conn:
            lost = await deliveries.mark_lost(conn)
        if lost:
            metrics.DELIVERIES.labels("lost").inc(lost)
            log.warning("deliveries in flight during a crash marked lost", extra={"count": lost})
        return lost

    async def run(self) -> None:
        """Recover, then send due rows until cancelled; outcomes still queued are written on exit."""
        await self.recover()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.writer.run(), name="delivery-outcomes")
                await self._claim_loop(tasks)
        finally:
            await self.writer.flush()

    async def _claim_loop(self, tasks: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        retry = 0.5
        claim_size = MIN_CLAIM
        while True:
            if loop.time() >= next_sweep:
                await self._sweep()
                next_sweep = loop.time() + min(60.0, self.lease.total_seconds() / 2 or 60.0)
            paused = self.limiter.paused_for
            if paused:
                await asyncio.sleep(paused)
                continue
            free = self.concurrency - self._in_flight
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            self._wake.clear()
            want = min(free, claim_size)
            try:
                async with self.pool.acquire() as conn:
                    rows = await deliveries.claim_due(conn, self.clock.now(), want)
            except (OSError, asyncpg.PostgresConnectionError) as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                log.warning("cannot claim deliveries", extra={"error": repr(exc), "retry_in": retry})
                await asyncio.sleep(retry)
                retry = min(retry * 2, 30.0)
                continue
            retry = 0.5
            # Claims ramp up: a small first claim reaches Telegram within milliseconds of a new
            # alert; while the queue stays full they double up to `max_claim`.
            claim_size = min(claim_size * 2, self.max_claim) if len(rows) == want else MIN_CLAIM
            for row in rows:
                claimed = Claimed.from_record(row)
                self._in_flight += 1
                tasks.create_task(self._deliver(claimed), name=f"deliver-{claimed.id}")
            if len(rows) < want:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _sweep(self) -> None:
        async with self.pool.acquire() as conn:
            lost = await deliveries.mark_lost(conn, older_than=self.lease)
            depth = await deliveries.queue_depth(conn, self.clock.now())
        metrics.QUEUE_DEPTH.set(depth)
        if lost:
            metrics.DELIVERIES.labels("lost").inc(lost)
            log.warning("deliveries stuck in flight marked lost", extra={"count": lost})

    async def _deliver(self, row: Claimed) -> None:
        try:
            if row.skip_reason is not None:
                self.writer.add(Outcome(row.id, "skipped", error=row.skip_reason))
                metrics.DELIVERIES.labels("skipped").inc()
                return
            try:
                await self.limiter.acquire(row.chat_id, group=row.group)
            except asyncio.CancelledError:
                # Stopped before the call: nothing was sent, give the row back.
                self.writer.add(Outcome(row.id, "pending", refund=1))
                raise
            async with self.requests.slot():
                outcome = await self._send(row)
            self._record(row, outcome)
        finally:
            self._in_flight -= 1
            self._slot_free.set()

    def _render(self, row: Claimed) -> RenderedAlert:
        """One rendering per (alert, language, tier, chat kind), shared by all its recipients."""
        key = (row.alert.id, row.language, row.tier, row.group)
        rendered = self._renders.get(key)
        if rendered is None:
            rendered = render_alert(
                row.alert,
                i18n=self.i18n,
                locale=row.language,
                tier=row.tier,
                private=not row.group,
                webapp_url=self.webapp_url,
            )
            if len(self._renders) >= _RENDER_CACHE:
                self._renders.pop(next(iter(self._renders)))
            self._renders[key] = rendered
        return rendered

    async def _send(self, row: Claimed) -> Outcome:
        rendered = self._render(row)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            message = await self.bot.send_message(row.chat_id, rendered.text, reply_markup=rendered.keyboard)
        except TelegramRetryAfter as exc:
            self.limiter.pause(exc.retry_after)
            log.warning("telegram rate limit: all sending paused", extra={"retry_after": exc.retry_after})
            return Outcome(row.id, "pending", error=exc.message, due_at=self.clock.now(), refund=1)
        except TelegramForbiddenError as exc:
            return Outcome(row.id, "blocked", error=exc.message)
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower():
                return Outcome(row.id, "blocked", error=exc.message)
            return Outcome(row.id, "failed", error=exc.message)
        except TelegramEntityTooLarge as exc:
            return Outcome(row.id, "failed", error=exc.message)
        except (TelegramNetworkError, TelegramServerError) as exc:
            if row.attempts >= self.max_attempts:
                return Outcome(row.id, "failed", error=exc.message)
            retry_at = self.clock.now() + backoff(row.attempts)
            return Outcome(row.id, "pending", error=exc.message, due_at=retry_at)
        except TelegramAPIError as exc:
            return Outcome(row.id, "failed", error=f"{type(exc).__name__}: {exc.message}")
        finally:
            elapsed = loop.time() - started
            metrics.SEND_SECONDS.observe(elapsed)
            self.requests.observe(elapsed)
        return Outcome(row.id, "sent", sent_at=self.clock.now(), message_id=message.message_id)

    def _record(self, row: Claimed, outcome: Outcome) -> None:
        blocked = outcome.status == "blocked"
        self.writer.add(
            outcome,
            blocked_user=row.chat_id if blocked and not row.group else None,
            dead_chat=row.chat_id if blocked and row.group else None,
        )
        label = outcome.status
        if outcome.status == "pending":
            label = "rate_limited" if outcome.refund else "retried"
        metrics.DELIVERIES.labels(label).inc()
        if outcome.status in ("failed", "blocked"):
            log.warning(
                "delivery not sent",
                extra={
                    "delivery": row.id,
                    "chat": row.chat_id,
                    "status": outcome.status,
                    "error": outcome.error,
                },
            )
