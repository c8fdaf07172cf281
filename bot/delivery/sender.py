"""The sender: due delivery rows → Telegram messages, within Telegram's limits, at most once.

Loop: claim due rows (elite first; `FOR UPDATE SKIP LOCKED`, so two processes never take the
same row) as `sending`, only as many as can go out soon; each row waits for the shared limiter,
is sent, and its outcome is queued for a batched write. With paid broadcasts there are two
lanes, elite rows on the paid budget and the rest on the free one, each claiming for its own rate.

At most once. A row is `sending` from its claim until its outcome is committed. Each failure is
classified (`bot.delivery.send_failures`): a message known not to have been sent is retried
(connection refused: backoff, `max_attempts`; 429: after `retry_after`); a message Telegram may
have delivered (timeout or reset after the request was written, 5xx) is never sent again: it
is recorded `unknown` and counted. We prefer a rare, reported unknown to a duplicate alert.

Checked again at the moment of sending, not only when the row was planned: the recipient's
pause, mutes and quiet hours (a row that falls into quiet hours is skipped, as planning does),
and the alert's age (older than ALERT_MAX_AGE: `expired`, not sent).

Telegram's answers: a 429 pauses that chat for `retry_after` (all sending only when several
chats get one within a short window, see the limiter); 403 / "chat not found" → `blocked`;
`migrate_to_chat_id` moves the chat to its new id and the message goes there; 401 (the token is
revoked) stops the sender: rows stay `pending`, `state.stopped` says why, for the health report.

Updates edit. A HALF or FULL update goes to a chat that already has a message of that symbol-hour
(its SPIKE, or an update that had to be sent new) as editMessageText of the latest such message,
so the chat keeps one message per symbol-hour. An update whose chat has an earlier row of the
symbol-hour still due or in flight (its SPIKE claimed beside it after a backlog, its outcome not
yet written) is given back until that row is settled: it never overtakes it. Only when Telegram
refuses the edit (the message is gone, or can no longer be edited; one older than EDIT_WINDOW is
not tried) or the chat has no message of the hour on record (its SPIKE row is `unknown`,
`expired`, ...) is the update sent as a new message, in the same attempt: a refusal is an answer
that nothing changed. "Message is not modified" is a success. The edit's row is `sent` with the
edited message's id and `edited` set. A crash with an edit or its fallback in flight leaves the
row `sending`, `unknown` at the next start like any send: never repeated, so never a second
message.

Bursts. A SPIKE in its chat's burst (`core.digest`: the chat already has DIGEST_MIN_SYMBOLS-1
SPIKEs within the minute before it, or its digest holds one of them) goes out in the chat's digest:
it waits while an earlier SPIKE of that minute is due or in flight, is marked as the digest's
(`digest_since`) just before the request, and edits the digest message (a new digest when there is
none or Telegram refuses the edit). A digest whose first message's outcome is unknown is never
followed by a second one: the burst's later SPIKEs go out as messages of their own.

Shutdown. When cancelled, requests already open get `grace` seconds to be answered (their
outcome is then known; after that they are `unknown`); every other claimed row goes back to
`pending`, so a clean shutdown loses nothing. Only a hard crash leaves rows `sending`: the next
start of any sender marks them `unknown`, never re-sent. A sender holds an owner lock (a session
advisory lock) while it runs and its key is in the rows it claims, so a sibling that starts
beside it (several bot processes, a rolling restart) leaves its rows in flight alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
from aiogram import Bot
from aiogram.utils.i18n import I18n

from bot.alert_message import RenderedAlert, render_alert
from bot.delivery import daily_cap, metrics
from bot.delivery import digest as digest_message
from bot.delivery.edit_or_send import Way, edit_or_send
from bot.delivery.limiter import RateLimiter
from bot.delivery.send_failures import Kind, SendFailure
from core.alert_message import SpikeFigures
from core.alerts import Alert, AlertType
from core.clock import Clock
from core.daily_cap import CapDay
from core.digest import WINDOW as DIGEST_WINDOW
from core.digest import in_burst
from core.tasks import raise_if_cancelling
from core.tiers import TIERS, Tier
from db import deliveries
from db import digest as digest_rows
from db.alert_context import context_from_db
from db.deliveries import Outcome

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # connection refused: 2 + 4 + ... + 60 s ≈ 3 minutes of trying
BACKOFF_CAP = timedelta(minutes=1)
DEFAULT_LEASE = timedelta(minutes=5)  # a `sending` row older than this belongs to a dead process
DEFAULT_MAX_AGE = timedelta(minutes=30)
SHUTDOWN_GRACE = 5.0  # seconds an open request gets to be answered on shutdown (runtime allows 10)
SEND_TIMEOUT = 15  # seconds for one sendMessage; no answer by then is `unknown`
# Telegram lets a bot edit its messages for 48 hours; an older message is not tried (new message).
EDIT_WINDOW = timedelta(hours=47)
BEHIND_RETRY = 0.0  # an update behind its SPIKE: due again at once (claimed again at the next poll)
MAX_LIMITER_WAIT = 60.0  # a row waiting longer for its slot goes back to `pending` (due after it)
_TIER_BY_PRIORITY = {limits.delivery_priority: tier for tier, limits in TIERS.items()}
ELITE_PRIORITY = TIERS[Tier.ELITE].delivery_priority
QUIET_HOURS_PRIORITIES = [limits.delivery_priority for limits in TIERS.values() if limits.custom_thresholds]
_RENDER_CACHE = 256
MIN_CLAIM = 16  # rows in the first claim after the queue was empty
MAX_CLAIM_SECONDS = 0.1  # a claim holds at most this much of the global budget
_DB_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    chat_id: int
    tier: Tier
    attempts: int
    language: str
    group: bool  # a group or channel (not a private chat)
    skip_reason: str | None
    expired: bool
    alert: Alert
    timezone: str = "UTC"
    spike: SpikeFigures | None = None  # an update's SPIKE of the hour
    edit_message_id: int | None = None  # an update: the chat's latest message of the symbol-hour
    edit_sent_at: datetime | None = None  # ... and when it was sent
    behind: bool = False  # an update whose chat has an earlier row of the symbol-hour unsettled
    cap: CapDay | None = None  # a SPIKE of a user with a daily cap: their day so far
    cap_behind: bool = False  # ... and another SPIKE of theirs is in flight or due before it
    spike_capped: bool = False  # an update of a SPIKE the daily cap held back
    burst_peers: int = 0  # a SPIKE: the chat's other SPIKEs of the minute before it (core.digest)
    spike_behind: bool = False  # ... one of them still due or in flight
    digest_message_id: int | None = None  # ... the chat's digest that holds one of them
    digest_sent_at: datetime | None = None
    digest_since: datetime | None = None  # ... and where its list starts

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
            context=context_from_db(row["context"]),
            projected_volume=row["projected_volume"],
        )
        return cls(
            id=row["id"],
            chat_id=row["chat_id"],
            tier=_TIER_BY_PRIORITY.get(row["priority"], Tier.FREE),
            attempts=row["attempts"],
            language=row["language"],
            group=row["chat_kind"] is not None,
            skip_reason=row["skip_reason"],
            expired=row["expired"],
            alert=alert,
            timezone=row["timezone"],
            spike=None
            if row["spike_at"] is None
            else SpikeFigures(row["spike_at"], row["spike_volume"], row["spike_ratio"], row["spike_price"]),
            edit_message_id=row["edit_message_id"],
            edit_sent_at=row["edit_sent_at"],
            behind=row["behind"],
            cap=_cap_day(row),
            cap_behind=bool(row["cap_behind"]),
            spike_capped=bool(row["spike_capped"]),
            burst_peers=row["burst_peers"],
            spike_behind=row["spike_behind"],
            digest_message_id=row["digest_message_id"],
            digest_sent_at=row["digest_sent_at"],
            digest_since=row["digest_since"],
        )


def _cap_day(row: asyncpg.Record) -> CapDay | None:
    if row["daily_cap"] is None:
        return None
    return CapDay(
        cap=row["daily_cap"],
        sent=row["cap_sent_today"] or 0,
        held=tuple(zip(row["cap_held_assets"] or (), row["cap_held_ratios"] or (), strict=True)),
        held_count=row["cap_held_today"] or 0,
        summary_message_id=row["cap_summary_id"],
    )


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: int
    edited: bool = False  # the update went in by editing message `message_id`
    digest_since: datetime | None = None  # went out in the chat's burst digest (`message_id`)
    capped: bool = False  # a SPIKE held back by the daily cap: `message_id` is the day's summary


@dataclass(frozen=True, slots=True)
class Digest:
    """A SPIKE row's burst digest: its text, where its list starts, the message to edit (None: new)."""

    text: str
    since: datetime
    message_id: int | None


@dataclass(slots=True)
class SenderState:
    """What the sender reports to the bot's health snapshot: `stopped` is None while it runs,
    else why it stopped; `changed` is set when that changes, so the report goes out at once."""

    stopped: str | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s, … capped at a minute."""
    return min(timedelta(seconds=2**attempts), BACKOFF_CAP)


def default_concurrency(rate: float) -> int:
    """Rows in flight at once: about a quarter second of the budget, so a crash loses little."""
    return max(4, min(256, int(rate / 4)))


class OutcomeWriter:
    """Collects outcomes and writes them in batches; whatever is waiting is written on close."""

    def __init__(self, pool: asyncpg.Pool, *, on_settled: Callable[[], None] | None = None) -> None:
        self._pool = pool
        self._on_settled = on_settled  # called after a write that settled a row (not only gave back)
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
        """Write outcomes as they come; a database outage is retried with backoff (30 s at most)."""
        delay = 0.5
        while True:
            raise_if_cancelling()
            await self._ready.wait()
            try:
                await self.flush()
            except _DB_ERRORS as exc:
                log.warning(
                    "delivery outcomes not written yet", extra={"error": repr(exc), "retry_in": delay}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                delay = 0.5

    async def close(self, attempts: int = 3) -> None:
        """Write what is left (a few tries). Rows whose outcome cannot be written stay `sending`
        and become `unknown` at the next start: never re-sent."""
        for attempt in range(attempts):
            try:
                await self.flush()
                return
            except _DB_ERRORS as exc:
                log.error(
                    "delivery outcomes not written at shutdown",
                    extra={"error": repr(exc), "outcomes": len(self._outcomes), "attempt": attempt + 1},
                )
                await asyncio.sleep(0.2 * (attempt + 1))

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
        if self._on_settled is not None and any(o.status != "pending" for o in outcomes):
            self._on_settled()
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
        max_age: timedelta = DEFAULT_MAX_AGE,
        grace: float = SHUTDOWN_GRACE,
        send_timeout: int = SEND_TIMEOUT,
        paid_broadcast: bool = False,
        lanes: bool = True,
        state: SenderState | None = None,
        digest_min_symbols: int = 0,
    ) -> None:
        self.bot = bot
        self.pool = pool
        self.i18n = i18n
        self.limiter = limiter
        self.clock = clock
        self.webapp_url = webapp_url
        # Two lanes when elite alerts are paid broadcasts: elite rows on the paid budget, the rest
        # on the free one, each with rows in flight for about a quarter second of its own budget.
        # One shared count would let pro and free rows claimed beside a fast paid lane wait
        # seconds for their slow budget, and a crash turns every claimed row `unknown`.
        # Kept after measuring one lane against two (issue #16, bench/steady_state.py): the last of
        # 850 paid elite took 4.3-6.5 s with one lane, 2.9-5.0 s with two (docs/benchmarks.md).
        lane_rate = limiter.paid_rate if paid_broadcast and limiter.paid_rate else limiter.rate
        self.concurrency = concurrency or default_concurrency(lane_rate)
        self.max_claim = max(MIN_CLAIM, int(lane_rate * MAX_CLAIM_SECONDS))
        # `lanes=False`: one lane for every tier on the paid lane's budget (the bench's comparison).
        self.rest_concurrency = (
            default_concurrency(limiter.rate) if lanes and paid_broadcast and limiter.paid_rate else 0
        )
        self.max_attempts = max_attempts
        self.lease = lease
        self.poll_interval = poll_interval
        self.max_age = max_age
        self.grace = grace
        self.send_timeout = send_timeout
        self.paid_broadcast = paid_broadcast
        self.state = state or SenderState()
        self.digest_min_symbols = digest_min_symbols  # DIGEST_MIN_SYMBOLS; 0: no burst digest
        self.writer = OutcomeWriter(pool, on_settled=self._settled_some)
        # A row waits for an earlier one of its chat (`behind`, `spike_behind`): claim again as soon
        # as an outcome is written, not at the next poll (a burst's rows go one after another).
        self._waiting = False
        self._wake = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._in_flight = 0  # claimed rows of the first lane (all rows when there is one lane)
        self._rest_in_flight = 0  # ... and of the second
        # Claimed rows without an outcome yet → whether their request has been started.
        self._open: dict[int, bool] = {}
        self._migrated: dict[int, int] = {}  # group id → its supergroup id, as Telegram told us
        self._renders: dict[tuple[int | None, str, Tier, bool, str, SpikeFigures | None], RenderedAlert] = {}
        self.owner: int | None = None  # this process's owner lock key while it runs

    def wake(self) -> None:
        """New deliveries may be due: look now instead of at the next poll."""
        self._wake.set()

    def _settled_some(self) -> None:
        """Rows were settled: a row given back to wait for one of them can go now. (Only a write that
        settled something wakes the claim: rows waiting for a row that stays due never spin.)"""
        if self._waiting:
            self._waiting = False
            self.wake()

    async def recover(self) -> int:
        """Start-up: rows left `sending` by a process that died (its owner lock is gone; a living
        sibling's rows stay as they are) become `unknown` (never re-sent), and due rows
        whose alert is too old become `expired`."""
        async with self.pool.acquire() as conn:
            unknown = await deliveries.mark_unknown(conn)
            expired = await deliveries.expire_due(conn, self.clock.now(), self.max_age)
        if unknown:
            metrics.DELIVERIES.labels("unknown").inc(unknown)
            log.warning(
                "deliveries in flight during a crash marked unknown (never re-sent)", extra={"count": unknown}
            )
        if expired:
            metrics.DELIVERIES.labels("expired").inc(expired)
            log.warning("deliveries older than ALERT_MAX_AGE expired", extra={"count": expired})
        return unknown

    async def run(self) -> None:
        """Recover, then send due rows until cancelled. On cancellation, open requests get `grace`
        seconds, every other claimed row goes back to `pending`, and all outcomes are written."""
        metrics.SENDER_STOPPED.set(0)
        async with self._ownership():
            await self.recover()
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self.writer.run(), name="delivery-outcomes")
                    await self._claim_loop(tasks)
            finally:
                self._settle_leftovers()
                await self.writer.close()

    @contextlib.asynccontextmanager
    async def _ownership(self) -> AsyncIterator[None]:
        """Hold this process's owner lock (one pooled connection) while it runs: the rows it
        claims carry the key, and a sibling starting meanwhile leaves them alone."""
        async with self.pool.acquire() as conn:
            self.owner = await deliveries.take_owner_lock(conn)
            try:
                yield
            finally:
                with contextlib.suppress(*_DB_ERRORS):
                    await deliveries.release_owner_lock(conn, self.owner)

    def _settle_leftovers(self) -> None:
        """Rows claimed but never finished (their task was cancelled before it ran, or a second
        cancellation cut the grace period short): an open request is `unknown`, the rest `pending`."""
        for row_id, calling in list(self._open.items()):
            if calling:
                self._write(row_id, Outcome(row_id, "unknown", error="request open at shutdown"), "unknown")
            else:
                self._write(row_id, Outcome(row_id, "pending", refund=1), "returned")

    async def _claim_loop(self, tasks: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        retry = 0.5
        claim_size = MIN_CLAIM
        while True:
            raise_if_cancelling()
            if self.state.stopped is not None:
                await asyncio.Event().wait()  # stopped for good: wait for the process to stop
            if loop.time() >= next_sweep:
                try:
                    await self._sweep()
                except _DB_ERRORS as exc:
                    log.warning("delivery sweep failed", extra={"error": repr(exc)})
                next_sweep = loop.time() + min(60.0, self.lease.total_seconds() / 2 or 60.0)
            paused = self.limiter.paused_for
            if paused:
                await asyncio.sleep(paused)
                continue
            free = self.concurrency - self._in_flight
            rest_free = self.rest_concurrency - self._rest_in_flight
            if free <= 0 and rest_free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            self._wake.clear()
            want = max(0, min(free, claim_size))
            split = (ELITE_PRIORITY, max(0, rest_free)) if self.rest_concurrency else None
            try:
                rows = await self._claim(want, split)
            except _DB_ERRORS as exc:
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
            claimed_rows = [(c, self._in_rest_lane(c)) for c in map(Claimed.from_record, rows)]
            rest_count = sum(rest for _, rest in claimed_rows)
            first = len(claimed_rows) - rest_count
            if want:
                claim_size = min(claim_size * 2, self.max_claim) if first == want else MIN_CLAIM
            # A lane that got all it asked for may have more due: claim again at once. Otherwise
            # wait for new rows, a slot freed in a lane that was full (both set `_wake`) or the poll.
            hungry = (want > 0 and first == want) or (
                split is not None and split[1] > 0 and rest_count == split[1]
            )
            for claimed, rest in claimed_rows:
                if rest:
                    self._rest_in_flight += 1
                else:
                    self._in_flight += 1
                self._open[claimed.id] = False
                tasks.create_task(self._deliver(claimed, rest), name=f"deliver-{claimed.id}")
            if not hungry:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _claim(self, want: int, split: tuple[int, int] | None) -> list[asyncpg.Record]:
        """Claim due rows. Shielded from a shutdown: a claim cancelled mid-statement may still
        have committed, and its rows (`sending`, never started) must go back to `pending` with the
        other leftovers instead of staying `sending` and turning `unknown` at the next start."""

        async def claim() -> list[asyncpg.Record]:
            async with self.pool.acquire() as conn:
                return await deliveries.claim_due(
                    conn,
                    self.clock.now(),
                    want,
                    max_age=self.max_age,
                    quiet_priorities=QUIET_HOURS_PRIORITIES,
                    split=split,
                    owner=self.owner,
                )

        task = asyncio.create_task(claim(), name="claim-due")
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            done, _ = await asyncio.wait({task}, timeout=self.grace)
            if done and not task.cancelled() and task.exception() is None:
                for row in task.result():
                    self._open[row["id"]] = False  # given back by `_settle_leftovers`
            elif not done:
                task.cancel()
            raise

    async def _sweep(self) -> None:
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            unknown = await deliveries.mark_unknown(conn, older_than=self.lease)
            expired = await deliveries.expire_due(conn, now, self.max_age)
            depth, oldest_age = await deliveries.queue_state(conn, now)
        metrics.QUEUE_DEPTH.set(depth)
        metrics.OLDEST_PENDING_AGE.set(oldest_age)
        if unknown:
            metrics.DELIVERIES.labels("unknown").inc(unknown)
            log.warning("deliveries stuck in flight marked unknown (never re-sent)", extra={"count": unknown})
        if expired:
            metrics.DELIVERIES.labels("expired").inc(expired)
            log.warning("deliveries older than ALERT_MAX_AGE expired", extra={"count": expired})

    # -- one row ---------------------------------------------------------------------------

    def _is_expired(self, row: Claimed) -> bool:
        return self.clock.now() - row.alert.detected_at > self.max_age

    def _in_rest_lane(self, row: Claimed) -> bool:
        return self.rest_concurrency > 0 and not self._paid(row)

    async def _deliver(self, row: Claimed, rest_lane: bool = False) -> None:
        try:
            if row.expired or self._is_expired(row):
                self._expire(row)
                return
            if row.skip_reason is not None:
                self._resolve(row, Outcome(row.id, "skipped", error=row.skip_reason), "skipped")
                return
            if row.behind:
                # Its SPIKE (or an earlier update) is due or in flight: wait for its message, so
                # the update edits it instead of arriving first or as a second message.
                self._waiting = True
                self._give_back(row, after=BEHIND_RETRY)
                return
            burst = self._in_burst(row)
            if burst and row.digest_since is not None and row.digest_message_id is None:
                # The burst's digest was sent when a crash came, its outcome unknown: no second
                # digest (it would list the same symbols again); the row is a message of its own.
                burst = False
            if burst and row.spike_behind:
                # An earlier SPIKE of the chat's minute is due or in flight: wait for it, so the
                # burst's rows go one after the other and never start two digests at once.
                self._waiting = True
                self._give_back(row, after=BEHIND_RETRY)
                return
            if row.spike_capped:
                self._resolve(row, Outcome(row.id, "skipped", error="daily cap"), "skipped")
                return
            if row.cap_behind:
                # Another SPIKE of this capped user is in flight or due first: the day's count
                # (and its summary) must see its outcome.
                self._waiting = True
                self._give_back(row, after=BEHIND_RETRY)
                return
            chat_pause = self.limiter.chat_paused_for(row.chat_id)
            if chat_pause or self.state.stopped is not None:
                self._give_back(row, after=chat_pause)
                return
            try:
                async with asyncio.timeout(MAX_LIMITER_WAIT):
                    await self.limiter.acquire(row.chat_id, group=row.group, paid=self._paid(row))
            except asyncio.CancelledError:
                self._give_back(row)  # stopped before the request: nothing was sent
                raise
            except TimeoutError:
                pause = max(self.limiter.paused_for, self.limiter.chat_paused_for(row.chat_id))
                self._give_back(row, after=pause)
                return
            # The wait may have been long: look again at what it may have changed.
            if self._is_expired(row):
                self._expire(row)
                return
            if self.state.stopped is not None:
                self._give_back(row)
                return
            new_chat = self._migrated.get(row.chat_id)
            if new_chat is not None:  # claimed for the old id before the chat moved
                await self._migrate(row, new_chat)
                return
            digest = None
            if burst:
                digest = await self._digest(row)
                if digest is None:
                    return
            result = await self._call(row, digest)
            await self._settle(row, result)
        finally:
            if rest_lane:
                self._rest_in_flight -= 1
                was_full = self._rest_in_flight == self.rest_concurrency - 1
            else:
                self._in_flight -= 1
                was_full = self._in_flight == self.concurrency - 1
            if was_full:
                self._wake.set()  # the claim loop may be waiting for the other lane's rows
            self._slot_free.set()

    def _in_burst(self, row: Claimed) -> bool:
        if row.cap is not None and row.cap.holds_back():
            return False  # the daily cap comes first: the SPIKE goes into the day's summary
        return row.alert.alert_type is AlertType.SPIKE and in_burst(
            peers=row.burst_peers,
            chained=row.digest_since is not None,
            min_symbols=self.digest_min_symbols,
        )

    async def _digest(self, row: Claimed) -> Digest | None:
        """The burst digest the row goes out in: the chat's digest of the burst (edited), or a new
        one listing the minute before it. None: not known (the database failed; given back)."""
        since = row.digest_since or row.alert.detected_at - DIGEST_WINDOW
        try:
            async with self.pool.acquire() as conn:
                spikes = await digest_rows.burst_spikes(
                    conn,
                    row.chat_id,
                    since=since,
                    delivery_id=row.id,
                    hour=row.alert.hour,
                    detected_at=row.alert.detected_at,
                )
                await digest_rows.mark(conn, row.id, since)
        except _DB_ERRORS as exc:
            log.warning("burst digest not read", extra={"delivery": row.id, "error": repr(exc)})
            self._give_back(row, after=1.0)
            return None
        target = row.digest_message_id
        if row.digest_sent_at is not None and self.clock.now() - row.digest_sent_at > EDIT_WINDOW:
            target = None
        text = digest_message.render_digest(spikes, i18n=self.i18n, locale=row.language)
        return Digest(text, since, target)

    async def _call(self, row: Claimed, digest: Digest | None = None) -> Sent | SendFailure:
        """The request, shielded from a shutdown: once it is written Telegram may deliver it, so on
        cancellation we wait up to `grace` for the answer instead of abandoning it."""
        self._open[row.id] = True
        send = self._send(row) if digest is None else self._send_digest(row, digest)
        call = asyncio.create_task(send, name=f"send-{row.id}")
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            try:
                done, _ = await asyncio.wait({call}, timeout=self.grace)
                if done:
                    await self._settle(row, call.result())
                else:
                    self._resolve(
                        row,
                        Outcome(row.id, "unknown", error="no answer within the shutdown grace period"),
                        "unknown",
                    )
            finally:
                if not call.done():
                    call.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await call
            raise

    async def _send(self, row: Claimed) -> Sent | SendFailure:
        if row.cap is not None and row.cap.holds_back():
            return await self._hold_back(row, row.cap)
        rendered = self._render(row)
        target = self._edit_target(row)
        posted = await edit_or_send(
            self.bot,
            row.chat_id,
            rendered.text,
            keyboard=rendered.keyboard,
            edit=target,
            paid=self._paid(row),
            timeout=self.send_timeout,
        )
        if isinstance(posted, SendFailure):
            return posted
        if target is not None:
            metrics.UPDATE_EDITS.labels(posted.way).inc()
        return Sent(posted.message_id, edited=posted.edited)

    async def _hold_back(self, row: Claimed, day: CapDay) -> Sent | SendFailure:
        """The daily cap is reached: the SPIKE goes into the day's summary instead of a message."""
        text, keyboard = daily_cap.render_summary(
            day, row.alert.asset, row.alert.ratio, i18n=self.i18n, locale=row.language
        )
        posted = await edit_or_send(
            self.bot,
            row.chat_id,
            text,
            keyboard=keyboard,
            edit=day.summary_message_id,
            timeout=self.send_timeout,
        )
        if isinstance(posted, SendFailure):
            return posted
        metrics.DAILY_CAP_HELD.labels("edited" if posted.edited else "new").inc()
        return Sent(posted.message_id, capped=True)

    async def _send_digest(self, row: Claimed, digest: Digest) -> Sent | SendFailure:
        """Edit the chat's digest to list the row's SPIKE, or send a new digest."""
        posted = await edit_or_send(
            self.bot,
            row.chat_id,
            digest.text,
            edit=digest.message_id,
            paid=self._paid(row),
            timeout=self.send_timeout,
        )
        if isinstance(posted, SendFailure):
            return posted
        if posted.way is Way.REFUSED:
            metrics.DIGESTS.labels("refused").inc()
        metrics.DIGESTS.labels("edited" if posted.edited else "sent").inc()
        return Sent(posted.message_id, edited=posted.edited, digest_since=digest.since)

    def _edit_target(self, row: Claimed) -> int | None:
        """The message an update edits: the chat's latest of the symbol-hour, if Telegram still lets
        the bot edit it (EDIT_WINDOW); None: the update is a new message."""
        if not row.alert.alert_type.is_update or row.edit_message_id is None:
            return None
        if row.edit_sent_at is not None and self.clock.now() - row.edit_sent_at > EDIT_WINDOW:
            return None
        return row.edit_message_id

    def _paid(self, row: Claimed) -> bool:
        """Elite alerts go out as paid broadcasts when TELEGRAM_PAID_BROADCAST is on."""
        return self.paid_broadcast and row.tier is Tier.ELITE

    async def _settle(self, row: Claimed, result: Sent | SendFailure) -> None:
        """Turn an answer (or its absence) into the row's outcome and its side effects."""
        now = self.clock.now()
        if isinstance(result, Sent):
            outcome = Outcome(
                row.id,
                "sent",
                sent_at=now,
                message_id=result.message_id,
                edited=result.edited,
                capped=result.capped,
                digest_since=result.digest_since,
            )
            self._resolve(row, outcome, "sent")
            return
        extra = {"delivery": row.id, "chat": row.chat_id, "error": result.error}
        match result.kind:
            case Kind.RATE_LIMITED:
                seconds = result.retry_after or 1
                everyone = self.limiter.rate_limited(row.chat_id, seconds)
                what = "all sending paused" if everyone else "this chat paused"
                log.warning(f"telegram rate limit: {what}", extra={**extra, "retry_after": seconds})
                due = now + timedelta(seconds=seconds)
                self._resolve(
                    row, Outcome(row.id, "pending", error=result.error, due_at=due, refund=1), "rate_limited"
                )
            case Kind.NOT_SENT:
                if row.attempts >= self.max_attempts:
                    self._resolve(row, Outcome(row.id, "failed", error=result.error), "failed")
                    log.warning("delivery failed: Telegram unreachable", extra=extra)
                else:
                    due = now + backoff(row.attempts)
                    self._resolve(row, Outcome(row.id, "pending", error=result.error, due_at=due), "retried")
            case Kind.BLOCKED:
                self.writer.add(
                    Outcome(row.id, "blocked", error=result.error),
                    blocked_user=None if row.group else row.chat_id,
                    dead_chat=row.chat_id if row.group else None,
                )
                self._done(row.id, "blocked")
            case Kind.REJECTED:
                self._resolve(row, Outcome(row.id, "failed", error=result.error), "failed")
                log.warning("delivery rejected by Telegram", extra=extra)
            case Kind.AMBIGUOUS:
                self._resolve(row, Outcome(row.id, "unknown", error=result.error), "unknown")
                log.warning("delivery outcome unknown (Telegram may have it; not re-sent)", extra=extra)
            case Kind.MIGRATED:
                assert result.migrate_to_chat_id is not None
                await self._migrate(row, result.migrate_to_chat_id)
            case Kind.TOKEN_REJECTED:
                self._give_back(row)
                self._stop(result.error)

    async def _migrate(self, row: Claimed, new_chat: int) -> None:
        try:
            async with self.pool.acquire() as conn:
                await deliveries.migrate_chat(conn, row.id, row.chat_id, new_chat, self.clock.now())
        except _DB_ERRORS as exc:
            log.warning("chat migration not saved", extra={"chat": row.chat_id, "error": repr(exc)})
            self._give_back(row)  # the next attempt meets the same answer and tries again
            return
        self._open.pop(row.id, None)
        metrics.DELIVERIES.labels("migrated").inc()
        if row.chat_id not in self._migrated:
            self._migrated[row.chat_id] = new_chat
            log.info(
                "group became a supergroup: chat moved", extra={"chat": row.chat_id, "new_chat": new_chat}
            )
        self.wake()

    def _stop(self, error: str) -> None:
        if self.state.stopped is not None:
            return
        self.state.stopped = f"Telegram rejected the bot token: {error}"
        metrics.SENDER_STOPPED.set(1)
        self.state.changed.set()
        log.error(
            "SENDER STOPPED: Telegram rejected the bot token; no alert is sent until the bot is "
            "restarted with a valid BOT_TOKEN (deliveries stay pending)",
            extra={"error": error},
        )
        self.wake()

    # -- outcomes --------------------------------------------------------------------------

    def _expire(self, row: Claimed) -> None:
        self._resolve(row, Outcome(row.id, "expired", error="older than ALERT_MAX_AGE"), "expired")

    def _give_back(self, row: Claimed, *, after: float = 0.0) -> None:
        """Known not sent, and not the row's fault: back to `pending`, the attempt not counted."""
        due = self.clock.now() + timedelta(seconds=after) if after else None
        self._resolve(row, Outcome(row.id, "pending", due_at=due, refund=1), "returned")

    def _resolve(self, row: Claimed, outcome: Outcome, label: str) -> None:
        self._write(row.id, outcome, label)

    def _write(self, row_id: int, outcome: Outcome, label: str) -> None:
        self.writer.add(outcome)
        self._done(row_id, label)

    def _done(self, row_id: int, label: str) -> None:
        self._open.pop(row_id, None)
        metrics.DELIVERIES.labels(label).inc()

    def _render(self, row: Claimed) -> RenderedAlert:
        """One rendering per (alert, language, tier, chat kind, time zone, the chat's own SPIKE of the
        hour for an update), shared by its recipients."""
        key = (row.alert.id, row.language, row.tier, row.group, row.timezone, row.spike)
        rendered = self._renders.get(key)
        if rendered is None:
            rendered = render_alert(
                row.alert,
                i18n=self.i18n,
                locale=row.language,
                tier=row.tier,
                private=not row.group,
                webapp_url=self.webapp_url,
                zone=row.timezone,
                spike=row.spike,
            )
            if len(self._renders) >= _RENDER_CACHE:
                self._renders.pop(next(iter(self._renders)))
            self._renders[key] = rendered
        return rendered
