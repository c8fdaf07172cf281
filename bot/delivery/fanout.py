"""Fan-out from PostgreSQL: every alert row without a recorded fan-out gets its delivery rows.

PostgreSQL, not the Redis stream, is the source of truth for which alerts still need delivery
rows: an alert is fanned out exactly when `alerts.fanned_out_at` is set, and that is written in
the transaction that writes its last delivery rows. `fan_out_due()` takes every alert that has
neither a fan-out nor a dead-letter mark, in id order, so an alert whose stream entry was lost
(Redis restarted without persistence, a failover, a trimmed or deleted stream, a worker that was
down) is still delivered. The stream only tells the worker to look now instead of at its next
periodic sweep.

- **Bounded by age.** An alert detected more than `max_age` ago (ALERT_MAX_AGE: it would not be
  sent to anyone any more) is not fanned out: it is dead-lettered as expired, with a log line and
  `volspike_fanout_dead_total{reason="expired"}`.
- **Poison alerts.** A fan-out that fails for a reason other than PostgreSQL being unavailable
  counts one attempt (`fanout_attempts`, `fanout_error`); after `max_attempts` the alert is
  dead-lettered (`fanout_failed_at`) with an error log. Either way the alerts after it go on.
  PostgreSQL being unavailable is not the alert's fault: that error is raised to the caller, which
  retries the whole sweep with backoff.
- **Idempotent.** Deliveries are unique per (alert, chat), so two workers fanning out the same
  alert, or a sweep re-running one that crashed half way, write no row twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import asyncpg
from prometheus_client import Counter

from bot.delivery import metrics
from bot.delivery.recipients import Conn, fan_out
from core.clock import Clock
from core.tasks import raise_if_cancelling
from db import alerts as db_alerts
from db.unavailable import is_unavailable

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BATCH = 100

FANOUT_DEAD = Counter(
    "volspike_fanout_dead_total",
    "Alerts dead-lettered without a fan-out (reason=failed: too many failed attempts; expired: too old)",
    ["reason"],
)
FANOUT_FAILURES = Counter("volspike_fanout_failures_total", "Failed fan-out attempts of an alert")


class Fanout:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock,
        max_age: timedelta,
        on_inserted: Callable[[], None] = lambda: None,
        max_attempts: int = MAX_ATTEMPTS,
        chunk: int = 1000,
        batch: int = BATCH,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.max_age = max_age
        self.on_inserted = on_inserted
        self.max_attempts = max_attempts
        self.chunk = chunk
        self.batch = batch
        self._lock = asyncio.Lock()  # one sweep at a time in this process

    async def fan_out_due(self) -> int:
        """Fan out every alert still without a fan-out; returns how many were fanned out.
        Raises what `is_unavailable` classifies (PostgreSQL down): the caller retries."""
        async with self._lock:
            await self._expire()
            done = 0
            after = 0
            while True:
                raise_if_cancelling()
                ids = await db_alerts.fanout_due(self.pool, after_id=after, limit=self.batch)
                for alert_id in ids:
                    done += await self._fan_out_one(alert_id)
                    after = alert_id
                if len(ids) < self.batch:
                    return done

    async def _expire(self) -> None:
        now = self.clock.now()
        expired = await db_alerts.expire_fanout(self.pool, detected_before=now - self.max_age, when=now)
        for alert_id, symbol, alert_type, detected_at in expired:
            FANOUT_DEAD.labels("expired").inc()
            log.error(
                "alert too old to fan out: dead-lettered, not sent",
                extra={
                    "alert": alert_id,
                    "symbol": symbol,
                    "type": alert_type.value,
                    "detected_at": detected_at.isoformat(),
                },
            )

    async def _fan_out_one(self, alert_id: int) -> int:
        def chunk_done(inserted: int) -> None:
            if inserted:
                self.on_inserted()  # the sender can start on this chunk while the next is written

        async def record(conn: Conn) -> None:
            await db_alerts.mark_fanned_out(conn, alert_id, self.clock.now())

        try:
            inserted = await fan_out(
                self.pool, alert_id, self.clock.now(), chunk=self.chunk, on_chunk=chunk_done, finish=record
            )
        # The poison boundary: whatever this alert raises must not block the alerts after it.
        except Exception as exc:
            if is_unavailable(exc):
                raise
            await self._record_failure(alert_id, exc)
            return 0
        metrics.ALERTS_FANNED_OUT.inc()
        log.info("alert fanned out", extra={"alert": alert_id, "deliveries": inserted})
        return 1

    async def _record_failure(self, alert_id: int, exc: Exception) -> None:
        FANOUT_FAILURES.inc()
        attempts, dead = await db_alerts.record_fanout_failure(
            self.pool, alert_id, repr(exc), max_attempts=self.max_attempts, when=self.clock.now()
        )
        if dead:
            FANOUT_DEAD.labels("failed").inc()
            log.error(
                "alert fan-out failed too often: dead-lettered",
                extra={"alert": alert_id, "attempts": attempts, "error": repr(exc)},
                exc_info=exc,
            )
        else:
            log.warning(
                "alert fan-out failed; retried at the next sweep",
                extra={"alert": alert_id, "attempts": attempts, "error": repr(exc)},
            )
