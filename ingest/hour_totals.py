"""Exact totals of closed hours whose minutes are incomplete, from the 1h kline over REST.

A reconnect while the gap backfill is slow or refused leaves holes in an hour; such an hour
is no denominator (the symbol cannot SPIKE) and owes no FULL_UPDATE until it is complete. For
each hour `SpikeDetector.incomplete_hours()` names, one request
`GET /fapi/v1/klines?symbol=S&interval=1h&startTime=H&limit=1` (weight 1) returns the hour's
closed kline; its quote volume (row index 7) is the exact total (`set_hour_total`).

A refused or failed request (429/418 after the client's own retries, 5xx, an empty answer)
is tried again for that hour with a doubling delay (capped), never in a tight loop; hours the
detector no longer names are forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from core.tasks import raise_if_cancelling
from ingest import metrics
from ingest.backfill import CLOSE_MARGIN_MS, HOUR_MS, ExchangeClock
from ingest.binance_rest import BinanceError, BinanceRest
from ingest.detector import SpikeDetector
from ingest.parsers import ParseError, kline_from_rest

log = logging.getLogger(__name__)


class HourTotals:
    def __init__(
        self,
        rest: BinanceRest,
        detector: SpikeDetector,
        clock: ExchangeClock,
        *,
        retry: float = 5.0,
        retry_cap: float = 120.0,
        concurrency: int = 4,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rest = rest
        self._detector = detector
        self._clock = clock
        self._retry = retry
        self._retry_cap = retry_cap
        self._concurrency = concurrency
        self._monotonic = monotonic
        self._attempts: dict[tuple[str, int], tuple[int, float]] = {}  # key → (failures, next try)

    async def run(self, interval: float) -> None:
        """Fetch what is due every `interval` seconds, until cancelled."""
        while True:
            raise_if_cancelling()
            await self.fetch_due()
            await asyncio.sleep(interval)

    async def fetch_due(self) -> int:
        """One round: fetch every wanted hour whose retry time has come; how many completed."""
        wanted = self._detector.incomplete_hours()
        keep = set(wanted)
        for key in [k for k in self._attempts if k not in keep]:
            del self._attempts[key]
        now = self._monotonic()
        due = [key for key in wanted if self._attempts.get(key, (0, 0.0))[1] <= now]
        if not due:
            return 0
        queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        for key in due:
            queue.put_nowait(key)
        done = 0

        async def worker() -> None:
            nonlocal done
            while not queue.empty():
                key = queue.get_nowait()
                if await self._fetch(*key):
                    done += 1
                    self._attempts.pop(key, None)
                else:
                    failures = self._attempts.get(key, (0, 0.0))[0] + 1
                    delay = min(self._retry_cap, self._retry * 2.0 ** (failures - 1))
                    self._attempts[key] = (failures, self._monotonic() + delay)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._concurrency, len(due))):
                group.create_task(worker())
        return done

    async def _fetch(self, symbol: str, hour_ms: int) -> bool:
        try:
            rows = await self._rest.klines(symbol, "1h", start_ms=hour_ms, limit=1)
        except BinanceError as exc:
            metrics.HOUR_TOTALS.labels("failed").inc()
            log.warning(
                "hour total not fetched", extra={"symbol": symbol, "hour_ms": hour_ms, "error": str(exc)}
            )
            return False
        now = self._clock.now_ms() - CLOSE_MARGIN_MS
        for row in rows:
            try:
                k = kline_from_rest(symbol, row, "1h", now_ms=now)
            except ParseError as exc:
                log.warning("malformed REST 1h kline", extra={"symbol": symbol, "error": str(exc)})
                continue
            if k.open_time_ms == hour_ms and k.closed and k.close_time_ms - k.open_time_ms == HOUR_MS - 1:
                self._detector.set_hour_total(symbol, hour_ms, k.quote_volume)
                metrics.HOUR_TOTALS.labels("ok").inc()
                log.info(
                    "hour total from the 1h kline",
                    extra={"symbol": symbol, "hour_ms": hour_ms, "quote_volume": k.quote_volume},
                )
                return True
        metrics.HOUR_TOTALS.labels("missing").inc()
        return False
