"""The fan-out worker: the Redis stream wakes it, PostgreSQL says what to fan out.

Two loops, each retrying every "unavailable" error of PostgreSQL and Redis with capped backoff
(`db.unavailable`), so neither a restart of PostgreSQL nor one of Redis stops it:

- **The sweep** calls `Fanout.fan_out_due()` at start and every `sweep_interval`, without Redis:
  an alert whose stream entry was lost (Redis restarted without persistence, a failover, a
  trimmed or deleted stream) is fanned out from PostgreSQL within one interval, and while Redis
  is down alerts are still fanned out.
- **The stream** is read through consumer group `names.delivery_group` on `names.alerts_stream`
  (created at `$` with MKSTREAM; recreated at `$` when the stream or group vanished, after which a
  sweep runs at once). Entries only wake the worker: for a batch of entries it runs a sweep, then
  acknowledges them; an entry is never processed on its own, so a malformed or poisonous entry can
  neither crash the worker nor be read first at every start. At start this consumer re-reads its
  own pending entries; every `claim_interval` it takes over entries other consumers left pending
  longer than `min_idle` (XAUTOCLAIM), then removes consumers of dead processes from the group:
  those idle longer than `consumer_idle` with nothing pending (XINFO CONSUMERS, XGROUP
  DELCONSUMER). A consumer name is `host-pid`, so without this every restart would add one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.delivery.fanout import Fanout
from core.backoff import Backoff
from core.redis_names import RedisNames
from core.tasks import raise_if_cancelling
from db.unavailable import UNAVAILABLE, is_unavailable

log = logging.getLogger(__name__)

STREAM_ERRORS: tuple[type[Exception], ...] = (*UNAVAILABLE, ResponseError)
RETRY_FIRST = 0.5
RETRY_MAX = 30.0


class StreamWorker:
    def __init__(
        self,
        redis: Redis,
        names: RedisNames,
        fanout: Fanout,
        *,
        consumer: str,
        min_idle: float = 30.0,
        claim_interval: float = 10.0,
        block: float = 1.0,
        batch: int = 100,
        sweep_interval: float = 5.0,
        consumer_idle: float = 600.0,
        retry_first: float = RETRY_FIRST,
        retry_max: float = RETRY_MAX,
    ) -> None:
        self.redis = redis
        self.stream = names.alerts_stream
        self.group = names.delivery_group
        self.fanout = fanout
        self.consumer = consumer
        self.min_idle_ms = int(min_idle * 1000)
        self.claim_interval = claim_interval
        self.block_ms = int(block * 1000)
        self.batch = batch
        self.sweep_interval = sweep_interval
        self.consumer_idle_ms = int(consumer_idle * 1000)
        self.retry_first = retry_first
        self.retry_max = retry_max

    async def run(self) -> None:
        """Sweep and read the stream until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._sweep_loop(), name="fanout-sweep")
            tasks.create_task(self._stream_loop(), name="fanout-stream")

    async def _sweep_loop(self) -> None:
        backoff = Backoff(self.retry_first, self.retry_max)
        while True:
            raise_if_cancelling()
            try:
                count = await self.fanout.fan_out_due()
            except UNAVAILABLE as exc:
                if not is_unavailable(exc):
                    raise
                delay = backoff.next_delay()
                log.warning(
                    "fan-out sweep: postgres unavailable", extra={"error": repr(exc), "retry_in": delay}
                )
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if count:
                log.info("sweep fanned out alerts", extra={"count": count})
            await asyncio.sleep(self.sweep_interval)

    async def _stream_loop(self) -> None:
        backoff = Backoff(self.retry_first, self.retry_max)
        while True:
            raise_if_cancelling()
            try:
                await self._consume(backoff)
            except STREAM_ERRORS as exc:
                if is_unavailable(exc):
                    delay = backoff.next_delay()
                    log.warning(
                        "fan-out worker lost a connection", extra={"error": repr(exc), "retry_in": delay}
                    )
                    await asyncio.sleep(delay)
                    continue
                # NOGROUP: the group is gone (Redis restarted, a failover, the stream deleted);
                # UNBLOCKED: the stream was deleted under a blocked read. Recreate the group at
                # `$`: what was added meanwhile is in PostgreSQL, and `_consume` sweeps first.
                if not (isinstance(exc, ResponseError) and str(exc).startswith(("NOGROUP", "UNBLOCKED"))):
                    raise
                log.warning(
                    "alert stream or consumer group vanished; recreating it", extra={"error": str(exc)}
                )

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _consume(self, backoff: Backoff) -> None:
        await self.ensure_group()
        await self.fanout.fan_out_due()  # Redis may have lost entries while we were away
        await self._own_pending()
        loop = asyncio.get_running_loop()
        next_claim = loop.time()
        while True:
            # redis-py can swallow a cancellation that lands while a blocking read completes
            # (its read timeout and our cancel racing): notice it here instead of blocking again.
            raise_if_cancelling()
            if loop.time() >= next_claim:
                await self.autoclaim()
                await self.prune_consumers()
                next_claim = loop.time() + self.claim_interval
            await self.read_new()
            backoff.reset()

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
            raise_if_cancelling()
            reply = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.min_idle_ms, start_id=cursor, count=self.batch
            )
            cursor, entries = reply[0], reply[1]
            if entries:
                log.info("claimed pending alert entries", extra={"count": len(entries)})
                handled += await self._wake([entry[0] for entry in entries])
            if cursor in (b"0-0", "0-0"):
                return handled

    async def prune_consumers(self) -> list[str]:
        """Remove consumers idle longer than `consumer_idle` with nothing pending; their names."""
        removed: list[str] = []
        for info in await self.redis.xinfo_consumers(self.stream, self.group):
            raw = info["name"]
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            if name == self.consumer or int(info["pending"]) or int(info["idle"]) < self.consumer_idle_ms:
                continue
            await self.redis.xgroup_delconsumer(self.stream, self.group, name)
            removed.append(name)
            log.info(
                "idle consumer removed from the group",
                extra={"consumer": name, "idle_s": int(info["idle"]) // 1000},
            )
        return removed

    async def _own_pending(self) -> None:
        """Entries this consumer name read before a restart but never acknowledged."""
        while True:
            raise_if_cancelling()
            reply = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=self.batch
            )
            if not await self._handle_reply(reply):
                return

    async def _handle_reply(self, reply: Any) -> int:
        ids = [entry[0] for _stream, entries in reply or () for entry in entries]
        return await self._wake(ids)

    async def _wake(self, ids: list[bytes]) -> int:
        """Entries arrived (or were claimed): fan out what PostgreSQL holds, then acknowledge them.
        Acknowledged only after the sweep: a crash in between re-reads them (harmless)."""
        if not ids:
            return 0
        await self.fanout.fan_out_due()
        await self.redis.xack(self.stream, self.group, *ids)
        return len(ids)
