"""Fetching missed 1m klines over REST, inside the request-weight budget.

Three jobs, all per symbol and all feeding the same `deliver(symbol, klines)` callback
(which seeds the detector and hands closed candles to the candle writer):

- `arm`: the previous and the current hour, on start and for new listings, so the spike
  rule has its denominator within a minute (on start only the minutes `candles_1m` lacks);
- `gap`: after a websocket reconnect, the minutes since the last closed candle seen;
- `history`: chart history (`history_hours`) missing from PostgreSQL, in the background,
  with only a share of the weight budget so gap fills always find room.

`closed` comes from exchange time (`ExchangeClock`), never the local wall clock: the last
row of a live query is the still-open minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from core.tasks import raise_if_cancelling
from ingest import metrics
from ingest.binance_rest import MAX_KLINES_LIMIT, BinanceApiError, BinanceError, BinanceRest
from ingest.parsers import Kline, ParseError, kline_from_rest

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
# a minute counts as closed only when exchange time is past its close by this much
CLOSE_MARGIN_MS = 1_000

Deliver = Callable[[str, list[Kline]], Awaitable[None]]
MissingRanges = Callable[[str, int, int], Awaitable[list[tuple[int, int]]]]
"""(symbol, first open time, last open time) → inclusive ranges of missing open times."""


class ExchangeClock:
    """Exchange time, estimated from the server time and the event times of frames.

    It only moves forward, and between observations it advances with the local monotonic
    clock; it errs late rather than early (an early estimate would call an open minute closed).
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._base_ms: int | None = None
        self._base_at = 0.0

    @property
    def known(self) -> bool:
        return self._base_ms is not None

    def observe(self, exchange_ms: int) -> None:
        if exchange_ms <= 0:
            return
        if self._base_ms is None or exchange_ms > self.now_ms():
            self._base_ms = exchange_ms
            self._base_at = self._monotonic()

    def now_ms(self) -> int:
        if self._base_ms is None:
            raise RuntimeError("exchange time is not known yet")
        return self._base_ms + int((self._monotonic() - self._base_at) * 1000)


@dataclass(slots=True)
class BackfillStats:
    candles: int = 0
    requests: int = 0
    failures: int = 0


def coalesce(
    ranges: Iterable[tuple[int, int]], *, join_gap_ms: int = 30 * MINUTE_MS
) -> list[tuple[int, int]]:
    """Merge sorted inclusive (start, end) ranges closer than `join_gap_ms`: fewer requests."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start - out[-1][1] <= join_gap_ms:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


class Backfiller:
    def __init__(
        self,
        rest: BinanceRest,
        deliver: Deliver,
        clock: ExchangeClock,
        *,
        concurrency: int = 8,
        history_share: float = 0.5,
    ) -> None:
        self._rest = rest
        self._deliver = deliver
        self._clock = clock
        self._concurrency = concurrency
        self._history_share = history_share
        self.stats = BackfillStats()

    async def fetch(
        self, symbol: str, start_ms: int, end_ms: int | None = None, *, share: float = 1.0
    ) -> list[Kline]:
        """1m klines with open time in [start_ms, end_ms] (end: now), paginated by 1500.

        Without `end_ms` it pages on while pages come back full, so a stale exchange-time
        estimate cannot cut the range short. A row followed by another is closed; only the
        last row is judged by exchange time.
        """
        start = start_ms - start_ms % MINUTE_MS
        out: list[Kline] = []
        while True:
            raise_if_cancelling()
            now = self._clock.now_ms()
            last = now - now % MINUTE_MS if end_ms is None else end_ms - end_ms % MINUTE_MS
            if start > last and end_ms is not None:
                break
            wanted = (last - start) // MINUTE_MS + 1
            # below 100 rows a request weighs 1 whatever the limit: ask for 99 at least
            limit = max(1, min(MAX_KLINES_LIMIT, wanted if end_ms is not None else max(wanted, 99)))
            rows = await self._rest.klines(
                symbol,
                "1m",
                start_ms=start,
                end_ms=None if end_ms is None else last + MINUTE_MS - 1,
                limit=limit,
                share=share,
            )
            self.stats.requests += 1
            page = self._parse(symbol, rows)
            out.extend(k for k in page if k.open_time_ms >= start)
            if len(rows) < limit or not page:
                break
            start = page[-1].open_time_ms + MINUTE_MS
        return out

    def _parse(self, symbol: str, rows: list[list[object]]) -> list[Kline]:
        page: list[Kline] = []
        now = self._clock.now_ms() - CLOSE_MARGIN_MS
        for i, row in enumerate(rows):
            try:
                # every row but the last is followed by a newer minute: closed for sure
                k = kline_from_rest(symbol, row, "1m", now_ms=now if i == len(rows) - 1 else None)
            except ParseError as exc:
                log.warning("malformed REST kline", extra={"symbol": symbol, "error": str(exc)})
                continue
            page.append(k)
        return page

    async def _one(self, symbol: str, start_ms: int, end_ms: int | None, share: float) -> int:
        try:
            klines = await self.fetch(symbol, start_ms, end_ms, share=share)
        except BinanceApiError as exc:
            # e.g. -1121 Invalid symbol right after a delisting: nothing to fetch
            log.warning("backfill refused", extra={"symbol": symbol, "error": str(exc)})
            self.stats.failures += 1
            return -1
        if not klines:
            return 0
        await self._deliver(symbol, klines)
        closed = sum(1 for k in klines if k.closed)
        self.stats.candles += closed
        metrics.BACKFILLED_CANDLES.inc(closed)
        return closed

    async def _run(self, jobs: Iterable[tuple[str, int, int | None]], share: float) -> tuple[int, list[str]]:
        """Run (symbol, start, end) jobs with bounded concurrency; returns (candles, failed symbols)."""
        queue: asyncio.Queue[tuple[str, int, int | None]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        total = 0
        failed: list[str] = []

        async def worker() -> None:
            nonlocal total
            while not queue.empty():
                symbol, start, end = queue.get_nowait()
                try:
                    got = await self._one(symbol, start, end, share)
                except BinanceError as exc:
                    log.warning("backfill failed", extra={"symbol": symbol, "error": str(exc)})
                    self.stats.failures += 1
                    failed.append(symbol)
                    continue
                total += max(0, got)

        workers = min(self._concurrency, queue.qsize())
        if workers:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(worker())
        return total, failed

    async def arm(
        self, symbols: Iterable[str], since: Mapping[str, int] | None = None
    ) -> tuple[int, list[str]]:
        """The previous and current hour of every symbol (detection armed); `since[symbol]`,
        when given, is the first minute not already loaded from `candles_1m`."""
        now = self._clock.now_ms()
        start = now - now % HOUR_MS - HOUR_MS
        starts = since or {}
        return await self._run(((s, max(start, starts.get(s, start)), None) for s in symbols), 1.0)

    async def gap(self, since: Mapping[str, int]) -> tuple[int, list[str]]:
        """For each symbol, every minute from open time `since[symbol]` to now."""
        return await self._run(((s, start, None) for s, start in since.items()), 1.0)

    async def history(
        self, symbols: Iterable[str], hours: int, missing: MissingRanges, *, before_ms: int | None = None
    ) -> tuple[int, list[str]]:
        """Fill what PostgreSQL lacks of the last `hours` hours (up to `before_ms`), gently."""
        now = self._clock.now_ms()
        end = (before_ms if before_ms is not None else now - now % MINUTE_MS) - MINUTE_MS
        first = now - now % MINUTE_MS - hours * HOUR_MS
        jobs: list[tuple[str, int, int | None]] = []
        for symbol in symbols:
            for lo, hi in coalesce(await missing(symbol, first, end)):
                jobs.append((symbol, lo, hi))
        return await self._run(jobs, self._history_share)
