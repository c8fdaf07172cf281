"""Funding and mark-price history: every `interval` of exchange time, one snapshot per symbol.

`observe()` is synchronous and cheap (the websocket reader calls it with every mark-price
frame): it keeps each symbol's latest values, and when a frame's event time enters a new
interval, the values as they stood at its boundary are queued as one batch. `run()` writes the
batches (`mark_snapshots`, unique on symbol + time, so a restart or a replayed frame writes
nothing twice). Driven by event time, like the detector: a replay gives the same rows.
PostgreSQL down: batches wait in memory (at most `max_batches`, oldest dropped with an error
log) and are retried with a capped backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import asyncpg
from prometheus_client import Counter

from core.clock import utc_from_ms
from core.tasks import raise_if_cancelling
from db import marks as db_marks
from db.pool import PG_UNAVAILABLE
from ingest.parsers import MarkPrice

log = logging.getLogger(__name__)

SNAPSHOTS_WRITTEN = Counter("volspike_mark_snapshots_written_total", "Mark/funding snapshots stored")

DEFAULT_INTERVAL_MS = 5 * 60_000
MAX_BACKOFF = 30.0


class MarkRecorder:
    def __init__(
        self, pool: asyncpg.Pool, *, interval_ms: int = DEFAULT_INTERVAL_MS, max_batches: int = 288
    ) -> None:
        self._pool = pool
        self.interval_ms = interval_ms
        self.max_batches = max_batches
        self._latest: dict[str, MarkPrice] = {}
        self._slot: int | None = None  # start of the interval the latest frames belong to
        self._batches: deque[list[db_marks.MarkSnapshot]] = deque()
        self._ready = asyncio.Event()

    @property
    def pending(self) -> int:
        return sum(len(b) for b in self._batches)

    def forget(self, symbol: str) -> None:
        self._latest.pop(symbol, None)

    def observe(self, marks: tuple[MarkPrice, ...] | list[MarkPrice], event_time_ms: int) -> None:
        """A mark-price frame (items already filtered to the universe)."""
        if event_time_ms <= 0:
            return
        slot = event_time_ms - event_time_ms % self.interval_ms
        if self._slot is None or slot > self._slot:
            if self._slot is not None and self._latest:
                self._queue(slot)  # the values as they stood when this interval began
            self._slot = slot
        for mark in marks:
            self._latest[mark.symbol] = mark

    def _queue(self, slot: int) -> None:
        ts = utc_from_ms(slot)
        batch = [
            db_marks.MarkSnapshot(
                m.symbol,
                ts,
                m.mark_price,
                m.index_price,
                m.funding_rate,
                utc_from_ms(m.next_funding_time_ms) if m.next_funding_time_ms > 0 else None,
            )
            for m in self._latest.values()
        ]
        if len(self._batches) >= self.max_batches:
            lost = self._batches.popleft()
            log.error("mark snapshots dropped: postgres behind", extra={"rows": len(lost)})
        self._batches.append(batch)
        self._ready.set()

    async def flush(self) -> int:
        """Write every queued batch; raises what PostgreSQL raised (the batch stays queued)."""
        written = 0
        while self._batches:
            batch = self._batches[0]
            written += await db_marks.insert_snapshots(self._pool, batch)
            self._batches.popleft()
        SNAPSHOTS_WRITTEN.inc(written)
        return written

    async def run(self) -> None:
        backoff = 0.5
        while True:
            raise_if_cancelling()
            await self._ready.wait()
            self._ready.clear()
            try:
                await self.flush()
            except PG_UNAVAILABLE as exc:
                log.warning("mark snapshots not written, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                self._ready.set()
            except asyncpg.PostgresError as exc:  # refused, not unavailable: do not retry forever
                dropped = self._batches.popleft()
                log.error(
                    "mark snapshots rejected, dropped", extra={"rows": len(dropped), "error": repr(exc)}
                )
                self._ready.set()
            else:
                backoff = 0.5
