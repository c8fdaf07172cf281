"""Alerts into PostgreSQL first, then into the Redis stream (and the live pub/sub channel).

Guarantees, for the delivery side to rely on:

- **Nothing twice in PostgreSQL.** The row is unique on (symbol, hour, type): `emit` of an
  alert that already has a row (a restart, a second ingest process) returns None and
  publishes nothing.
- **Nothing lost.** The row is committed before anything reaches Redis. If Redis is down,
  the row keeps `published_at IS NULL` and `republish_pending` (run at start and every few
  seconds) publishes it later, in id order. If PostgreSQL is down, `emit` keeps the alert in
  memory (at most `MAX_HELD` of them, oldest dropped with an error log) and
  `republish_pending` saves and publishes it once PostgreSQL answers.
- **At least once into the stream.** A row is published under a `FOR UPDATE SKIP LOCKED`
  lock, so two publishers never XADD the same row concurrently; but a crash between the XADD
  and the commit of `published_at` publishes that alert again after the restart. Consumers
  must be idempotent on the alert `id`: the delivery worker is, because `deliveries` is
  unique on (alert_id, chat_id), so a duplicate stream entry sends no duplicate message.
  The pub/sub copy on `alerts_channel` is best effort (live Mini App feed only).
- **One bad row stops nothing.** A stored row that cannot be published (unreadable, or figures
  and times that break `core.alert_figures`) is dead-lettered (`publish_failed_at`, with
  the reason, and never fanned out), logged, counted, and the rows after it go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

import asyncpg
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core import alert_figures
from core.alerts import Alert
from core.redis_names import ALERTS_STREAM_MAXLEN, RedisNames
from core.tasks import raise_if_cancelling
from db import alerts as db_alerts
from db.candles import PG_ERRORS
from db.pool import PG_UNAVAILABLE
from db.unavailable import REDIS_UNAVAILABLE as REDIS_DOWN

log = logging.getLogger(__name__)

SHUTDOWN_PUBLISH_TIMEOUT = 3.0  # seconds a cancelled emit still gives its publication
CONNECT_TIMEOUT = 3.0  # the alert connection
COMMAND_TIMEOUT = 10.0  # an INSERT stuck longer (a lock, a hung server) fails and the alert is held
CLOSE_TIMEOUT = 2.0

ALERTS_EMITTED = Counter("volspike_alerts_emitted_total", "Alert rows created by ingest", ["type"])
PUBLISH_FAILURES = Counter(
    "volspike_alert_publish_failures_total",
    "Alerts that could not be saved (stage=db) or published (stage=redis) at once",
    ["stage"],
)
ALERTS_PUBLISHED = Counter("volspike_alerts_published_total", "Alert rows added to the Redis stream")
ALERTS_DEAD_LETTERED = Counter(
    "volspike_alerts_dead_lettered_total", "Alert rows set aside because they cannot be published"
)

# Any Redis error leaves the alert for `republish_pending`: its row is safe in PostgreSQL.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (*REDIS_DOWN, RedisError)
MAX_HELD = 10_000
REPUBLISH_BATCH = 500


class AlertPublisher:
    """With `database_url`, new alerts are inserted over a connection of their own (opened on
    first use, reopened after a failure; `close()` closes it): an alert never queues for a pool
    slot behind candle batches or backfill queries, and its statement stays prepared."""

    def __init__(
        self, pool: asyncpg.Pool, redis: Redis, names: RedisNames, *, database_url: str | None = None
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._names = names
        self._database_url = database_url
        self._conn: asyncpg.Connection | None = None
        self._held: deque[Alert] = deque()  # alerts PostgreSQL could not take yet

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=CLOSE_TIMEOUT)
            except PG_ERRORS:
                conn.terminate()

    async def open(self) -> None:
        """Open the alert connection ahead of the first alert (best effort: a failure is
        logged, and the first alert tries again)."""
        if self._database_url is None or (self._conn is not None and not self._conn.is_closed()):
            return
        try:
            self._conn = await self._connect(self._database_url)
        except PG_UNAVAILABLE as exc:
            log.warning("alert connection not opened yet", extra={"error": repr(exc)})

    @staticmethod
    async def _connect(url: str) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(
            url, timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT
        )
        return conn

    async def _insert(self, alert: Alert) -> int | None:
        if self._database_url is None:
            return await db_alerts.insert_alert(self._pool, alert)
        conn = self._conn
        if conn is None or conn.is_closed():
            conn = self._conn = await self._connect(self._database_url)
        try:
            return await db_alerts.insert_alert(conn, alert)
        except PG_UNAVAILABLE:
            self._conn = None
            conn.terminate()  # broken: the next alert opens a new one
            raise

    @property
    def held(self) -> int:
        """Alerts waiting in memory for PostgreSQL."""
        return len(self._held)

    async def emit(self, alert: Alert, *, on_commit: Callable[[], None] | None = None) -> Alert | None:
        """Save and publish one detected alert; `on_commit` runs as soon as the row is committed.

        Returns the alert with its row id (published, or left for `republish_pending` when
        Redis is down), or None when the row already existed or PostgreSQL is down (the
        alert is then held in memory and saved by `republish_pending`).
        """
        saved = await self.save(alert, on_commit=on_commit)
        if saved is not None:
            await self.publish(saved)
        return saved

    async def save(self, alert: Alert, *, on_commit: Callable[[], None] | None = None) -> Alert | None:
        """The first half of `emit`: the row only. The caller must `publish()` what this returns
        (in order); until then the row is unpublished, and `republish_pending` would pick it up
        after a restart."""
        try:
            alert_id = await self._insert(alert)
        except PG_UNAVAILABLE as exc:
            PUBLISH_FAILURES.labels("db").inc()
            log.warning(
                "postgres unavailable, holding alert",
                extra={"symbol": alert.symbol, "type": alert.alert_type.value, "error": repr(exc)},
            )
            self._hold(alert)
            return None
        if alert_id is None:
            return None
        if on_commit is not None:
            on_commit()
        ALERTS_EMITTED.labels(alert.alert_type.value).inc()
        return alert.with_id(alert_id)

    async def publish(self, saved: Alert) -> None:
        """The second half of `emit`: XADD the saved row and mark it published (Redis down:
        left for `republish_pending`)."""
        assert saved.id is not None
        try:
            await self._finish_publishing(saved.id)
        except PG_UNAVAILABLE as exc:
            log.warning("postgres unavailable while publishing", extra={"id": saved.id, "error": repr(exc)})

    async def _finish_publishing(self, alert_id: int) -> None:
        """XADD and mark published, also when we are cancelled half way (a clean shutdown):
        a stream entry whose row is not marked would be published a second time on restart."""
        task = asyncio.ensure_future(self._publish_one(alert_id))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(TimeoutError, *PG_UNAVAILABLE, *REDIS_UNAVAILABLE):
                await asyncio.wait_for(task, SHUTDOWN_PUBLISH_TIMEOUT)
            raise

    def _hold(self, alert: Alert) -> None:
        if len(self._held) >= MAX_HELD:
            lost = self._held.popleft()
            log.error(
                "alert dropped: too many held while postgres is down",
                extra={"symbol": lost.symbol, "hour": lost.hour.isoformat(), "type": lost.alert_type.value},
            )
        self._held.append(alert)

    async def _send(self, payload: bytes) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(
            self._names.alerts_stream, {"alert": payload}, maxlen=ALERTS_STREAM_MAXLEN, approximate=True
        )
        pipe.publish(self._names.alerts_channel, payload)
        await pipe.execute()

    async def _payload(self, conn: db_alerts.Conn, row: asyncpg.Record) -> bytes | None:
        """The row's stream payload; None when it cannot be published (it is dead-lettered)."""
        try:
            alert = db_alerts.from_row(row)
            found = alert_figures.problem(alert)
            reason = None if found is None else f"{found[0]} {found[1]}"
            payload = alert.to_json() if reason is None else b""
        except (ValueError, TypeError, OverflowError, KeyError) as exc:  # not even readable
            reason = f"unreadable: {exc!r}"
        if reason is None:
            return payload
        await db_alerts.dead_letter(conn, row["id"], reason[:500])
        ALERTS_DEAD_LETTERED.inc()
        log.error(
            "alert dead-lettered: it cannot be published",
            extra={"id": row["id"], "symbol": row["symbol"], "reason": reason[:500]},
        )
        return None

    async def _publish_locked(self, conn: db_alerts.Conn, rows: list[asyncpg.Record]) -> int:
        """XADD each locked row, then mark those that made it; stop at the first Redis error."""
        done: list[int] = []
        try:
            for row in rows:
                payload = await self._payload(conn, row)
                if payload is None:
                    continue
                await self._send(payload)
                done.append(row["id"])
        except REDIS_UNAVAILABLE as exc:
            PUBLISH_FAILURES.labels("redis").inc()
            log.warning("redis unavailable, alert left for republish", extra={"error": repr(exc)})
        if done:
            await db_alerts.mark_published(conn, done)
            ALERTS_PUBLISHED.inc(len(done))
        return len(done)

    async def _publish_one(self, alert_id: int) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await db_alerts.lock_unpublished_by_id(conn, alert_id)
            if row is None:
                return 0  # published meanwhile by republish_pending
            return await self._publish_locked(conn, [row])

    async def republish_pending(self, batch: int = REPUBLISH_BATCH) -> int:
        """Save held alerts, then publish unpublished rows in id order; how many were published."""
        published = 0
        while self._held:
            alert = self._held[0]
            alert_id = await db_alerts.insert_alert(self._pool, alert)  # PG down: raises, kept held
            self._held.popleft()
            if alert_id is not None:
                ALERTS_EMITTED.labels(alert.alert_type.value).inc()
        while True:
            raise_if_cancelling()
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await db_alerts.lock_unpublished(conn, batch)
                sent = await self._publish_locked(conn, rows) if rows else 0
            published += sent
            if sent < batch:
                return published

    async def run(self, interval: float = 2.0) -> None:
        """Republish every `interval` seconds until cancelled (errors are logged, not fatal)."""
        while True:
            raise_if_cancelling()
            try:
                count = await self.republish_pending()
            except PG_UNAVAILABLE as exc:
                log.warning("republish: postgres unavailable", extra={"error": repr(exc)})
            except asyncpg.PostgresError:
                log.exception("republish: postgres refused, retrying")
            else:
                if count:
                    log.info("republished alerts", extra={"count": count})
            await asyncio.sleep(interval)
