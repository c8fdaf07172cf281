"""The stream worker: alert entries in Redis → delivery rows in PostgreSQL, then XACK.

Consumer group `names.delivery_group` on `names.alerts_stream`:

- The group is created at `$` (with MKSTREAM) the first time: a new deployment does not replay
  the stream's history to users. Once the group exists its position is kept by Redis, so a
  restart continues where the group left off. If the stream or group disappears while running
  (NOGROUP), the group is recreated five minutes back, so nothing added meanwhile is skipped.
- At start, this consumer first re-reads its own pending entries (id `0`), then, and every
  `claim_interval`, takes over entries another consumer read but never acknowledged for longer
  than `min_idle` (XAUTOCLAIM): a crashed worker's entries are delivered by a living one.
- Per entry: parse the alert; a malformed entry, or one whose alert row does not exist, is logged
  and acknowledged (it can never succeed). Otherwise the recipients query writes the delivery rows
  (in chunks of users, one transaction each, waking the sender after each commit so the first
  messages leave while later chunks are written), and only after the last commit is the entry
  acknowledged. A crash in between re-processes the entry, and `UNIQUE (alert_id, chat_id)` makes
  the rows already written a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.delivery import metrics
from bot.delivery.recipients import fan_out
from volspike.alerts import Alert
from volspike.clock import Clock
from volspike.redis_names import RedisNames
from volspike.tasks import raise_if_cancelling

log = logging.getLogger(__name__)

FIND_ALERT_BY_ID = "SELECT id FROM alerts WHERE id = $1"
FIND_ALERT_BY_KEY = "SELECT id FROM alerts WHERE symbol = $1 AND hour_ts = $2 AND alert_type = $3"

Entry = tuple[bytes, dict[bytes, bytes]]
RETRY_FIRST = 0.5
RETRY_MAX = 30.0
REPLAY_ON_RECREATE_MS = 5 * 60 * 1000


class StreamWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        names: RedisNames,
        *,
        clock: Clock,
        consumer: str,
        on_inserted: Callable[[], None] = lambda: None,
        min_idle: float = 30.0,
        claim_interval: float = 10.0,
        block: float = 1.0,
        batch: int = 100,
        chunk: int = 1000,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.stream = names.alerts_stream
        self.group = names.delivery_group
        self.clock = clock
        self.consumer = consumer
        self.on_inserted = on_inserted
        self.min_idle_ms = int(min_idle * 1000)
        self.claim_interval = claim_interval
        self.block_ms = int(block * 1000)
        self.batch = batch
        self.chunk = chunk

    async def ensure_group(self, start: str = "$") -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        """Consume until cancelled. A lost connection is retried with backoff (30 s at most) and a
        deleted stream or group is recreated, instead of taking the whole bot down."""
        delay = RETRY_FIRST
        while True:
            try:
                await self._consume()
            except ResponseError as exc:
                raise_if_cancelling()
                # NOGROUP: the group is gone; UNBLOCKED: the stream was deleted under a blocked read.
                if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                    raise
                # Whatever was added since (a recreated stream holds only new entries) must not be
                # skipped: start the new group a few minutes back. Re-reading entries that were
                # already handled is harmless (one delivery row per alert and chat).
                log.warning("alert stream or consumer group vanished; recreating it")
                await self.ensure_group(start=f"{int(time.time() * 1000) - REPLAY_ON_RECREATE_MS}-0")
            except (RedisConnectionError, RedisTimeoutError, OSError, asyncpg.PostgresConnectionError) as exc:
                raise_if_cancelling()
                log.warning(
                    "delivery worker lost a connection", extra={"error": repr(exc), "retry_in": delay}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def _consume(self) -> None:
        await self.ensure_group()
        await self._own_pending()
        loop = asyncio.get_running_loop()
        next_claim = loop.time()
        while True:
            # redis-py can swallow a cancellation that lands while a blocking read completes
            # (its read timeout and our cancel racing): notice it here instead of blocking again.
            raise_if_cancelling()
            if loop.time() >= next_claim:
                await self.autoclaim()
                next_claim = loop.time() + self.claim_interval
            await self.read_new()

    async def read_new(self) -> int:
        """One XREADGROUP `>` (blocking up to `block`); returns how many entries it handled."""
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=self.batch, block=self.block_ms
        )
        return await self._handle_reply(reply)

    async def autoclaim(self) -> int:
        """Take over entries left pending by other consumers for longer than `min_idle`."""
        handled = 0
        cursor: bytes | str = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.min_idle_ms, start_id=cursor, count=self.batch
            )
            cursor, entries = reply[0], reply[1]
            if entries:
                log.info("claimed pending alert entries", extra={"count": len(entries)})
                handled += await self.process(entries)
            if cursor in (b"0-0", "0-0"):
                return handled

    async def _own_pending(self) -> None:
        """Entries this consumer name read before a restart but never acknowledged."""
        while True:
            reply = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=self.batch
            )
            if not await self._handle_reply(reply):
                return

    async def _handle_reply(self, reply: Any) -> int:
        handled = 0
        for _stream, entries in reply or ():
            handled += await self.process([e for e in entries if e[1]])
            # Entries deleted from the stream (trimmed) come back with no fields: just ack them.
            gone = [e[0] for e in entries if not e[1]]
            if gone:
                await self.redis.xack(self.stream, self.group, *gone)
        return handled

    async def process(self, entries: list[Entry]) -> int:
        for entry_id, fields in entries:
            await self._process_one(entry_id, fields)
            await self.redis.xack(self.stream, self.group, entry_id)
        return len(entries)

    async def _process_one(self, entry_id: bytes, fields: dict[bytes, bytes]) -> int:
        try:
            alert = Alert.from_json(fields[b"alert"])
        except (KeyError, ValueError, TypeError, orjson.JSONDecodeError) as exc:
            log.error("malformed alert entry acknowledged", extra={"entry": entry_id, "error": repr(exc)})
            return 0
        async with self.pool.acquire() as conn:
            if alert.id is not None:
                alert_id = await conn.fetchval(FIND_ALERT_BY_ID, alert.id)
            else:
                alert_id = await conn.fetchval(
                    FIND_ALERT_BY_KEY, alert.symbol, alert.hour, alert.alert_type.value
                )
        if alert_id is None:
            log.error("alert entry without an alert row acknowledged", extra={"entry": entry_id})
            return 0

        def chunk_done(inserted: int) -> None:
            if inserted:
                self.on_inserted()  # the sender can start on this chunk while we write the next

        inserted = await fan_out(self.pool, alert_id, self.clock.now(), chunk=self.chunk, on_chunk=chunk_done)
        metrics.ALERTS_FANNED_OUT.inc()
        log.info(
            "alert fanned out", extra={"alert": alert_id, "symbol": alert.symbol, "deliveries": inserted}
        )
        return inserted
