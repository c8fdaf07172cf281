"""Closed 1m candles into PostgreSQL in batches: COPY into staging, then upsert.

`add()` is synchronous and cheap (the websocket loop calls it per closed kline); `run()`
flushes every `max_delay` seconds or as soon as `max_rows` are waiting. The last write per
(symbol, open_time) wins, in memory and in the table, so replayed, duplicated and backfilled
candles never duplicate.

PostgreSQL down: rows stay in memory and the flush is retried with a capped backoff
(0.5 s doubling to 30 s). Memory is bounded by `max_buffered` rows (default 500,000, about
14 hours of ~600 symbols); beyond it the oldest rows are dropped with an error log and a
counter. Dropped or unsaved minutes are not lost for good: `db.candles.missing_minutes`
finds the gaps and the backfill fetches them again from REST. A batch PostgreSQL rejects
for a reason other than availability (a bug, bad data) is retried `MAX_REJECTS` times, then
dropped with an error log, so one poison batch cannot stop every later write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, date, datetime

import asyncpg
from prometheus_client import Counter, Histogram

from core.tasks import raise_if_cancelling
from db.candles import PG_ERRORS, PG_UNAVAILABLE, Candle, stored_minutes, upsert_candles
from db.partitions import ensure_partitions
from ingest.parsers import Kline

log = logging.getLogger(__name__)

CANDLES_WRITTEN = Counter("volspike_candles_written_total", "Closed 1m candles upserted into PostgreSQL")
CANDLES_DROPPED = Counter("volspike_candles_dropped_total", "Closed 1m candles dropped before being saved")
CANDLE_WRITE_SECONDS = Histogram(
    "volspike_candle_write_seconds",
    "Latency of one candle batch write (COPY + upsert)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

MAX_BACKOFF = 30.0
MAX_REJECTS = 3
FINAL_FLUSH_TIMEOUT = 5.0
CONVERT_SLICE = 250  # rows converted between two yields to the event loop

Row = tuple[str, datetime, float, float, float, float, float, float, int, float, float]


def _row(k: Kline, times: dict[int, datetime] | None = None) -> Row:
    """The COPY record of a kline; `times` caches open times (a batch shares few minutes)."""
    if times is None:
        opened = datetime.fromtimestamp(k.open_time_ms / 1000, UTC)
    else:
        opened = times.get(k.open_time_ms)  # type: ignore[assignment]
        if opened is None:
            opened = times[k.open_time_ms] = datetime.fromtimestamp(k.open_time_ms / 1000, UTC)
    return (
        k.symbol,
        opened,
        k.open,
        k.high,
        k.low,
        k.close,
        k.volume,
        k.quote_volume,
        k.trades,
        k.taker_buy_volume,
        k.taker_buy_quote,
    )


def kline_from_stored(symbol: str, c: Candle) -> Kline:
    """A stored (closed, final) 1m candle as the kline the detector is seeded with."""
    open_ms = int(c.open_time.timestamp() * 1000)
    return Kline(
        symbol=symbol,
        interval="1m",
        open_time_ms=open_ms,
        close_time_ms=open_ms + 59_999,
        open=c.open,
        high=c.high,
        low=c.low,
        close=c.close,
        volume=c.volume,
        quote_volume=c.quote_volume,
        trades=c.trades,
        taker_buy_volume=c.taker_buy_volume,
        taker_buy_quote=c.taker_buy_quote,
        closed=True,
        event_time_ms=open_ms + 60_000,
    )


async def load_stored(pool: asyncpg.Pool, start_ms: int, end_ms: int) -> dict[str, list[Kline]]:
    """The closed 1m candles of every symbol with open time in [start_ms, end_ms), as klines."""
    stored = await stored_minutes(
        pool, datetime.fromtimestamp(start_ms / 1000, UTC), datetime.fromtimestamp(end_ms / 1000, UTC)
    )
    return {symbol: [kline_from_stored(symbol, c) for c in rows] for symbol, rows in stored.items()}


class CandleWriter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_rows: int = 500,
        max_delay: float = 1.0,
        max_buffered: int = 500_000,
    ) -> None:
        self._pool = pool
        self.max_rows = max_rows
        self.max_delay = max_delay
        self.max_buffered = max(max_buffered, max_rows)
        self._rows: dict[tuple[str, int], Kline] = {}
        self._days: set[date] = set()  # days whose partition is known to exist
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()
        self._rejects = 0
        self.dropped = 0  # rows dropped since start (buffer cap, rejected batches)

    @property
    def pending(self) -> int:
        return len(self._rows)

    def add(self, k: Kline) -> None:
        """Queue a closed 1m kline (others are ignored); the last one per minute wins."""
        if not k.closed or k.interval != "1m":
            return
        key = (k.symbol, k.open_time_ms)
        rows = self._rows
        if key in rows:
            del rows[key]  # re-insert at the end: keeps eviction order by arrival
        elif len(rows) >= self.max_buffered:
            oldest = next(iter(rows))
            del rows[oldest]
            CANDLES_DROPPED.inc()
            self.dropped += 1
            if self.dropped % 10_000 == 1:  # throttle the log, not the count
                log.error("candle buffer full, dropping the oldest", extra={"cap": self.max_buffered})
        rows[key] = k
        if len(rows) >= self.max_rows:
            self._full.set()

    async def _ensure_days(self, rows: list[Row]) -> None:
        days = {row[1].date() for row in rows} - self._days
        if days:
            await ensure_partitions(self._pool, min(days), max(days))
            self._days.update(days)

    async def flush(self) -> int:
        """Write everything queued now; the number of rows written.

        Raises what PostgreSQL raised (rows are kept for the next flush), except that a batch
        rejected `MAX_REJECTS` times for a non-availability reason is dropped and logged.
        """
        async with self._lock:
            if not self._rows:
                return 0
            batch, self._rows = self._rows, {}
            self._full.clear()
            times: dict[int, datetime] = {}
            rows: list[Row] = []
            started = time.perf_counter()
            try:
                for n, k in enumerate(batch.values(), 1):
                    rows.append(_row(k, times))
                    if n % CONVERT_SLICE == 0:
                        await asyncio.sleep(0)  # a backfill batch is large: let the readers in
                await self._ensure_days(rows)
                async with self._pool.acquire() as conn:
                    await upsert_candles(conn, rows)
            except asyncio.CancelledError:
                self._requeue(batch)  # committed or not: the upsert makes a rewrite harmless
                raise
            except PG_UNAVAILABLE:
                self._requeue(batch)
                raise
            except asyncpg.PostgresError as exc:
                self._days.clear()  # e.g. a partition dropped behind our back: check again
                self._rejects += 1
                if self._rejects >= MAX_REJECTS:
                    self._rejects = 0
                    CANDLES_DROPPED.inc(len(rows))
                    self.dropped += len(rows)
                    log.error("candle batch rejected, dropped", extra={"rows": len(rows), "error": repr(exc)})
                    return 0
                self._requeue(batch)
                raise
            self._rejects = 0
            CANDLE_WRITE_SECONDS.observe(time.perf_counter() - started)
            CANDLES_WRITTEN.inc(len(rows))
            return len(rows)

    def _requeue(self, batch: dict[tuple[str, int], Kline]) -> None:
        """Put a failed batch back, under anything newer that arrived meanwhile, within the cap."""
        newer = self._rows
        batch.update(newer)
        overflow = len(batch) - self.max_buffered
        if overflow > 0:
            for key in list(batch)[:overflow]:
                del batch[key]
            CANDLES_DROPPED.inc(overflow)
            self.dropped += overflow
            log.error("candle buffer full, dropped the oldest", extra={"dropped": overflow})
        self._rows = batch
        if len(batch) >= self.max_rows:
            self._full.set()

    async def run(self) -> None:
        """Flush loop until cancelled; on cancel it flushes what it holds (bounded in time)."""
        backoff = 0.5
        try:
            while True:
                raise_if_cancelling()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), timeout=self.max_delay)
                try:
                    await self.flush()
                except PG_ERRORS as exc:
                    log.warning(
                        "candle write failed, retrying",
                        extra={"pending": self.pending, "retry_in": backoff, "error": repr(exc)},
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                else:
                    backoff = 0.5
        finally:
            await self._final_flush()

    async def _final_flush(self) -> None:
        if not self._rows:
            return
        try:
            async with asyncio.timeout(FINAL_FLUSH_TIMEOUT):
                await self.flush()
        except PG_ERRORS as exc:
            log.error("candles not saved at shutdown", extra={"rows": self.pending, "error": repr(exc)})
