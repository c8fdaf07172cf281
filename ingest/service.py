"""The ingest service: universe + streams + backfill + detector + publisher + candle writer
+ live state + 24h tickers + retention + health, composed and run until cancelled.

Start-up, in order: candle partitions exist (retention job once), exchange time and the
universe are read over REST, the alerts already fired this hour and the previous one are
restored into the detector (a restart mid-hour sends no second SPIKE; an update it still
owes waits until that hour's minutes are loaded), the streams open, and then, concurrently
with live frames, every symbol's previous and current hour is loaded from `candles_1m` and
what that lacks from REST (detection armed), followed by chart history in the background.
Hours whose minutes stay incomplete get their exact total from the 1h kline (`HourTotals`).

Frames are processed in arrival order by one task: the detector sees every kline at once and
an alert is inserted and published inline (`AlertPublisher.emit`) before the next frame,
while closed candles only go into the writer's buffer (`CandleWriter.add`, flushed in
batches by its own task). Market logic runs on exchange time (event times, server time).

With `INGEST_SHARD=i/n` the service follows only its shard's symbols (`core.shard`); shard 0
also keeps the `symbols` table and runs the retention and outcomes jobs. Which process of a shard
runs the service is decided outside it (`ingest.leadership`).

Cancellation stops everything: the task group cancels its tasks, the candle writer flushes
what it holds (bounded), websockets and the HTTP session close, the scheduler shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

import asyncpg
import orjson
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.alerts import Alert
from core.clock import Clock, SystemClock, utc_from_ms
from core.presets import Grades
from core.redis_names import RedisNames
from core.settings import Settings
from core.tasks import raise_if_cancelling
from db import alerts as db_alerts
from db import candles as db_candles
from db.live_state import LiveState
from db.publisher import AlertPublisher
from ingest import metrics
from ingest.backfill import HOUR_MS, MINUTE_MS, Backfiller, ExchangeClock
from ingest.binance_rest import BinanceError, BinanceRest
from ingest.candle_feed import CandleFeed
from ingest.candles import CandleWriter, load_stored
from ingest.context import ContextGatherer, HourFlows
from ingest.detector import HeldBack, SpikeDetector
from ingest.hour_totals import HourTotals
from ingest.marks import MarkRecorder
from ingest.open_interest import WarmOpenInterest
from ingest.outcomes import OutcomesJob
from ingest.parsers import Kline, MarkPrices, Tickers
from ingest.retention import RetentionJob
from ingest.streams import DataFrame, StreamConnection, StreamManager, StreamOptions
from ingest.universe import SymbolInfo, UniverseChange, UniverseRefresher
from ingest.volume_curves import VolumeCurvesJob

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError)
OPEN_INTEREST_CONCURRENCY = 4  # open-interest lookups in flight at once
LIVE_SLICE = 25  # symbols snapshotted between two yields to the event loop


@dataclass(frozen=True, slots=True)
class IngestTimings:
    """Every period and timeout of the service; tests shrink them through `run_ingest(**...)`."""

    universe_refresh: float = 600.0
    ticker_refresh: float = 60.0
    health_interval: float = 5.0
    health_ttl: float = 30.0
    republish_interval: float = 2.0
    retention_interval: float = 3600.0
    outcomes_interval: float = 60.0  # SPIKE outcomes owed a horizon are computed
    curves_interval: float = 3600.0  # stale usual-pace curves (early warning) are recomputed
    live_flush: float = 1.0
    candle_flush: float = 1.0
    silence_timeout: float = 30.0
    max_lifetime: float = 23 * 3600.0
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    reconcile_interval: float = 60.0  # LIST_SUBSCRIPTIONS check of each websocket connection
    gap_retry: float = 5.0
    delist_horizon: float = 3600.0
    backfill_concurrency: int = 8
    history: bool = True
    audit_interval: float = 300.0  # look for holes in the last hours of candles_1m
    hour_total_interval: float = 1.0  # how often hours with missing minutes are looked for
    hour_total_retry: float = 5.0  # first delay before a refused 1h kline is asked again
    mark_snapshot_interval: float = 300.0  # exchange seconds between funding/mark snapshots
    context_timeout: float = 0.5  # the stored part of an alert's context, before it goes without
    open_interest_timeout: float = 5.0  # both open-interest requests of an alert, after publishing
    open_interest_warm_limit: int = 20  # symbols whose open interest is kept warm at once
    open_interest_refresh: float = 30.0  # exchange seconds between two reads of a warm symbol's OI
    open_interest_tick: float = 1.0  # how often the warm symbols are looked at (and when one warms)


async def run_ingest(
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    *,
    clock: Clock | None = None,
    **intervals: Any,
) -> None:
    """Run the ingest service until cancelled. `intervals` override `IngestTimings` fields."""
    known = {f.name for f in fields(IngestTimings)}
    unknown = set(intervals) - known
    if unknown:
        raise TypeError(f"unknown ingest timing(s): {', '.join(sorted(unknown))}")
    service = IngestService(settings, pool, redis, clock=clock, timings=IngestTimings(**intervals))
    await service.run()


class IngestService:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        redis: Redis,
        *,
        clock: Clock | None = None,
        timings: IngestTimings | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.names = RedisNames(settings.redis_prefix)
        self.shard = settings.shard
        self.clock = clock or SystemClock()
        self.t = timings or IngestTimings()
        self.exchange_clock = ExchangeClock()
        self.detector = SpikeDetector(
            settings.spike_multiple,
            settings.spike_min_quote_volume,
            grades=Grades.for_defaults(settings.spike_multiple, settings.spike_min_quote_volume),
            on_held_back=self._held_back,
        )
        self.publisher = AlertPublisher(pool, redis, self.names, database_url=settings.database_url)
        self.writer = CandleWriter(pool, max_delay=self.t.candle_flush)
        self.marks = MarkRecorder(pool, interval_ms=int(self.t.mark_snapshot_interval * 1000))
        self.live = LiveState(redis, self.names, min_interval=self.t.live_flush)
        self.candle_feed = CandleFeed(redis, self.names, min_interval=self.t.live_flush)
        self.retention = RetentionJob(
            pool,
            settings.candle_retention_days,
            delivery_retention_days=settings.delivery_retention_days,
            clock=self.clock,
        )
        self.outcomes = OutcomesJob(pool, lookback_days=settings.candle_retention_days, clock=self.clock)
        self.curves = VolumeCurvesJob(pool, self.detector, lambda: sorted(self.universe), clock=self.clock)
        self.streams = StreamManager(
            settings.binance_ws_url,
            self._on_frame,
            self._on_reopen,
            StreamOptions(
                max_streams=settings.max_streams_per_connection,
                silence_timeout=self.t.silence_timeout,
                max_lifetime=self.t.max_lifetime,
                backoff_base=self.t.backoff_base,
                backoff_cap=self.t.backoff_cap,
                reconcile_interval=self.t.reconcile_interval,
            ),
        )
        self.universe: dict[str, SymbolInfo] = {}
        self.armed = asyncio.Event()
        self.alerts_emitted = 0
        self.latencies: deque[float] = deque(maxlen=2000)  # seconds, frame received → alert saved
        self._alerts: asyncio.Queue[tuple[Alert, float]] = asyncio.Queue()  # detected, not yet saved
        self._to_publish: asyncio.Queue[tuple[Alert, float]] = asyncio.Queue()  # saved, not yet published
        self._last_closed: dict[str, int] = {}  # symbol → open time of the newest closed minute
        self._dirty: set[str] = set()
        self._gaps: dict[str, int] = {}  # symbol → first open time to fetch
        self._gap_event = asyncio.Event()
        self._rest: BinanceRest | None = None
        self._backfill: Backfiller | None = None
        self._refresher: UniverseRefresher | None = None
        self._hour_totals: HourTotals | None = None
        # the alert's context (ingest/context.py): minutes in memory, the rest gathered around saving
        self.flows = HourFlows()
        self._context: ContextGatherer | None = None
        self._open_interest: asyncio.Queue[Alert] = asyncio.Queue()  # published, OI still to add
        self._warm_oi: WarmOpenInterest | None = None  # OI read before the crossing (ingest/open_interest.py)

    # --- life cycle ---------------------------------------------------------------------

    async def run(self) -> None:
        metrics_runner = None
        scheduler = AsyncIOScheduler(timezone=UTC)
        rest = BinanceRest(self.settings.binance_rest_url, on_request=metrics.record_rest)
        self._rest = rest
        self._context = ContextGatherer(
            self.pool,
            rest,
            stored_timeout=self.t.context_timeout,
            open_interest_timeout=self.t.open_interest_timeout,
            now_ms=self.exchange_clock.now_ms,
        )
        self._warm_oi = warm_oi = WarmOpenInterest(
            rest,
            self.exchange_clock.now_ms,
            self.settings.spike_multiple,
            self.settings.spike_min_quote_volume,
            limit=self.t.open_interest_warm_limit,
            refresh_ms=int(self.t.open_interest_refresh * 1000),
            timeout=self.t.open_interest_timeout,
            tick=self.t.open_interest_tick,
        )
        self._backfill = Backfiller(
            rest, self._deliver, self.exchange_clock, concurrency=self.t.backfill_concurrency
        )
        self._hour_totals = HourTotals(
            rest, self.detector, self.exchange_clock, retry=self.t.hour_total_retry
        )
        self._refresher = UniverseRefresher(
            rest,
            self.pool,
            include_tradfi=self.settings.include_tradfi,
            interval=self.t.universe_refresh,
            store=self.shard.runs_global_jobs,
            delist_horizon_ms=int(self.t.delist_horizon * 1000),
        )
        try:
            if self.settings.ingest_metrics_port is not None:
                metrics_runner = await metrics.start_metrics_server(
                    "0.0.0.0", self.settings.ingest_metrics_port
                )
            if self.shard.runs_global_jobs:
                await self.retention.run_once()
            await self._start_up(rest, self._refresher)
            scheduler.start()
            self.curves.schedule(scheduler, interval=timedelta(seconds=self.t.curves_interval))
            if self.shard.runs_global_jobs:
                self.retention.schedule(scheduler, interval=timedelta(seconds=self.t.retention_interval))
                self.outcomes.schedule(scheduler, interval=timedelta(seconds=self.t.outcomes_interval))
            async with asyncio.TaskGroup() as group:
                group.create_task(self.streams.run(), name="ingest-streams")
                group.create_task(self._emit_loop(), name="ingest-alerts")
                group.create_task(self._publish_loop(), name="ingest-publish")
                group.create_task(self._open_interest_loop(), name="ingest-open-interest")
                group.create_task(warm_oi.run(), name="ingest-open-interest-warm")
                group.create_task(self.writer.run(), name="ingest-candles")
                group.create_task(self.marks.run(), name="ingest-marks")
                group.create_task(self.publisher.run(self.t.republish_interval), name="ingest-republish")
                group.create_task(self._warm_up(), name="ingest-warm-up")
                group.create_task(self._gap_worker(), name="ingest-gaps")
                group.create_task(self._refresher.run(self._on_universe_change), name="ingest-universe")
                group.create_task(self._ticker_loop(), name="ingest-tickers")
                group.create_task(self._live_loop(), name="ingest-live")
                group.create_task(self.candle_feed.run(), name="ingest-candle-feed")
                group.create_task(self._health_loop(), name="ingest-health")
                group.create_task(self._audit_loop(), name="ingest-audit")
                group.create_task(self._hour_totals_loop(), name="ingest-hour-totals")
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            await rest.close()
            await self.publisher.close()
            await self._write_health(stopped=True)
            if metrics_runner is not None:
                await metrics_runner.cleanup()

    async def _start_up(self, rest: BinanceRest, refresher: UniverseRefresher) -> None:
        """Exchange time, universe and restored alerts; retried until the exchange answers."""
        delay = self.t.backoff_base
        while True:
            raise_if_cancelling()
            try:
                self.exchange_clock.observe(await rest.server_time())
                change = await refresher.refresh()
                break
            except BinanceError as exc:
                log.warning("exchange not answering at start, retrying", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.t.backoff_cap)
        self._apply_universe(change)
        previous_hour = self._hour_start() - HOUR_MS
        fired = await db_alerts.fired_since(self.pool, utc_from_ms(previous_hour))
        fired = [row for row in fired if self.shard.owns(row[0])]  # other shards restore theirs
        self.detector.restore(fired)
        await self.curves.load()  # the stored usual pace; the scheduled run refreshes what is stale
        await self.publisher.republish_pending()
        await self.publisher.open()
        log.info(
            "ingest starting",
            extra={
                "symbols": len(self.universe),
                "shard": str(self.shard),
                "restored_alerts": len(fired),
                "ws": self.settings.binance_ws_url,
            },
        )

    def _hour_start(self) -> int:
        now = self.exchange_clock.now_ms()
        return now - now % HOUR_MS

    def _own(self, change: UniverseChange) -> UniverseChange:
        """The part of a universe change that belongs to this shard."""
        if self.shard.count == 1:
            return change
        owns = self.shard.owns
        return UniverseChange(
            added=tuple(s for s in change.added if owns(s)),
            removed=tuple(s for s in change.removed if owns(s)),
            current={s: info for s, info in change.current.items() if owns(s)},
        )

    def _apply_universe(self, change: UniverseChange) -> None:
        change = self._own(change)
        for symbol in change.removed:
            self.detector.forget(symbol)
            self.flows.forget(symbol)
            if self._warm_oi is not None:
                self._warm_oi.forget(symbol)
            self.marks.forget(symbol)
            self.live.remove(symbol)
            self._last_closed.pop(symbol, None)
            self._gaps.pop(symbol, None)
        self.universe = dict(change.current)
        for symbol, info in self.universe.items():
            self.detector.set_asset(symbol, info.base_asset)
        self.streams.set_symbols(sorted(self.universe))
        metrics.SYMBOLS.set(len(self.universe))

    async def _on_universe_change(self, change: UniverseChange) -> None:
        self._apply_universe(change)
        start = self._hour_start() - HOUR_MS
        for symbol in self._own(change).added:  # arm new listings: previous and current hour
            self._want_gap(symbol, start)

    # --- frames -------------------------------------------------------------------------

    def _on_frame(self, frame: DataFrame, received: float) -> None:
        """Detection runs here, inside the websocket reader, as each frame is read: no queue
        between a frame and the rule. Alerts go to `_emit_loop`, and the pacer is pressed so
        that readers step aside until the alert's row is saved."""
        detector = self.detector
        alerts: list[Alert]
        if type(frame) is Kline:
            if frame.symbol not in self.universe:
                return  # a leftover frame of a delisted symbol
            self.exchange_clock.observe(frame.event_time_ms)
            self.flows.add(frame)  # before the rule: an alert's context includes its own kline
            alerts = detector.on_kline(frame)
            warm = self._warm_oi
            if warm is not None and frame.interval == "1m":
                hour_ms = frame.open_time_ms - frame.open_time_ms % HOUR_MS
                standing = (
                    None if warm.is_warm(frame.symbol, hour_ms) else detector.standing(frame.symbol, hour_ms)
                )
                if standing is not None:
                    warm.observe(frame.symbol, hour_ms, standing[1], standing[0])
            self.candle_feed.update(frame)
            if frame.closed and frame.interval == "1m":
                self.writer.add(frame)
                if frame.open_time_ms > self._last_closed.get(frame.symbol, 0):
                    self._last_closed[frame.symbol] = frame.open_time_ms
            self._dirty.add(frame.symbol)
        elif type(frame) is MarkPrices:
            self.exchange_clock.observe(frame.event_time_ms)
            universe = self.universe
            kept = [mark for mark in frame.items if mark.symbol in universe]
            for mark in kept:
                detector.set_mark(mark)
            self.marks.observe(kept, frame.event_time_ms)
            alerts = detector.on_time(frame.event_time_ms)
        elif type(frame) is Tickers:
            for ticker in frame.items:
                if ticker.symbol in self.universe:
                    self.live.set_24h(ticker.symbol, ticker.change_pct, ticker.quote_volume)
            return
        else:  # pragma: no cover - DataFrame is exhaustive
            return
        for alert in alerts:
            alert = self.flows.attach(alert)
            if self._warm_oi is not None:
                alert = self._warm_oi.attach(alert)  # a fresh warm OI figure, if any: no I/O
            self._alerts.put_nowait((alert, received))
            self.streams.pacer.press()  # released by _emit_loop once the row is saved

    def _held_back(self, held: HeldBack) -> None:
        """An alert the detector did not emit because a figure was not known: said and counted."""
        metrics.ALERTS_HELD_BACK.labels(held.alert_type.value, held.reason).inc()
        log.warning(
            "alert held back",
            extra={
                "symbol": held.symbol,
                "hour": utc_from_ms(held.hour_ms).isoformat(),
                "type": held.alert_type.value,
                "reason": held.reason,
            },
        )

    async def _emit_loop(self) -> None:
        """Save detected alerts one at a time, in detection order; publishing is handed to
        `_publish_loop`, so that an alert detected meanwhile waits for one INSERT, not for the
        previous alert's whole publication."""
        queue = self._alerts
        while True:
            raise_if_cancelling()
            alert, received = await queue.get()
            try:
                if self._context is not None:
                    alert = await self._context.add_stored(alert)  # bounded: never holds it back
                saved = await self._save(alert, received)
            finally:
                self.streams.pacer.release()  # readers stepped aside since its detection
            if saved is not None:
                self._to_publish.put_nowait((saved, received))

    async def _save(self, alert: Alert, received: float) -> Alert | None:
        committed = received

        def on_commit() -> None:
            nonlocal committed
            committed = time.perf_counter()

        if self.settings.use_simulator:
            alert = replace(alert, simulated=True)  # core.alerts: its text says so everywhere
        try:
            saved = await self.publisher.save(alert, on_commit=on_commit)
        except asyncpg.PostgresError as exc:
            log.error(
                "alert rejected by postgres",
                extra={"symbol": alert.symbol, "type": alert.alert_type.value, "error": repr(exc)},
            )
            return None
        if saved is None:
            return None
        # Detection latency: frame received → alert row committed (publishing to Redis follows).
        elapsed = committed - received
        self.alerts_emitted += 1
        self.latencies.append(elapsed)
        metrics.DETECTION_LATENCY.observe(elapsed)
        return saved

    async def _publish_loop(self) -> None:
        """Saved alerts into the Redis stream, in the order they were saved. Whatever is still
        queued at shutdown stays unpublished in PostgreSQL and is published at the next start."""
        queue = self._to_publish
        while True:
            raise_if_cancelling()
            saved, received = await queue.get()
            await self.publisher.publish(saved)
            self._open_interest.put_nowait(saved)
            log.info(
                "alert",
                extra={
                    "symbol": saved.symbol,
                    "type": saved.alert_type.value,
                    "ratio": round(saved.ratio, 2),
                    "id": saved.id,
                    "published_ms": round((time.perf_counter() - received) * 1000, 1),
                },
            )

    async def _open_interest_loop(self) -> None:
        """After publishing, each alert's open-interest change (ingest/context.py), a few at a
        time: a slow or refused request leaves the figure unknown, never delays an alert."""
        assert self._context is not None
        gatherer = self._context
        slots = asyncio.Semaphore(OPEN_INTEREST_CONCURRENCY)
        async with asyncio.TaskGroup() as group:
            while True:
                raise_if_cancelling()
                saved = await self._open_interest.get()
                await slots.acquire()
                task = group.create_task(gatherer.add_open_interest(saved))
                task.add_done_callback(lambda _: slots.release())

    # --- backfill -----------------------------------------------------------------------

    async def _deliver(self, symbol: str, klines: list[Kline]) -> None:
        """Backfilled klines: into the detector's hours and, closed ones, the candle writer."""
        if symbol not in self.universe:
            return
        self.detector.seed(symbol, klines)
        self.flows.seed(klines)
        for k in klines:
            if k.closed:
                self.writer.add(k)
                if k.open_time_ms > self._last_closed.get(symbol, 0):
                    self._last_closed[symbol] = k.open_time_ms
        self._dirty.add(symbol)

    def _on_reopen(self, conn: StreamConnection, symbols: list[str], since_ms: int | None) -> None:
        """A connection came back: fetch what its symbols may have missed."""
        fallback = self._hour_start() - HOUR_MS
        for symbol in symbols:
            start = fallback
            if since_ms is not None:
                start = since_ms - since_ms % MINUTE_MS - MINUTE_MS  # the minute before the drop
            last = self._last_closed.get(symbol)
            if last is not None:
                start = min(start, last + MINUTE_MS)
            self._want_gap(symbol, max(start, fallback - 24 * HOUR_MS))

    def _want_gap(self, symbol: str, start_ms: int) -> None:
        current = self._gaps.get(symbol)
        self._gaps[symbol] = start_ms if current is None else min(current, start_ms)
        self._gap_event.set()

    async def _gap_worker(self) -> None:
        assert self._backfill is not None
        await self.armed.wait()
        while True:
            raise_if_cancelling()
            await self._gap_event.wait()
            self._gap_event.clear()
            jobs = {s: start for s, start in self._gaps.items() if s in self.universe}
            self._gaps.clear()
            if not jobs:
                continue
            await self._sync_exchange_time()
            candles, failed = await self._backfill.gap(jobs)
            log.info(
                "gap backfilled", extra={"symbols": len(jobs), "candles": candles, "failed": len(failed)}
            )
            if failed:
                await asyncio.sleep(self.t.gap_retry)
                for symbol in failed:
                    self._want_gap(symbol, jobs[symbol])

    async def _sync_exchange_time(self) -> None:
        assert self._rest is not None
        try:
            self.exchange_clock.observe(await self._rest.server_time())
        except BinanceError as exc:
            log.warning("server time not read", extra={"error": str(exc)})

    async def _warm_up(self) -> None:
        """Arm detection (previous + current hour of every symbol), then chart history."""
        assert self._backfill is not None
        symbols = sorted(self.universe)
        started = time.monotonic()
        armed_from = self._hour_start() - HOUR_MS
        loaded = await self._seed_stored(symbols, armed_from)
        candles, failed = await self._backfill.arm(symbols, loaded)
        for symbol in failed:
            self._want_gap(symbol, armed_from)
        self.armed.set()
        log.info(
            "detection armed",
            extra={
                "symbols": len(symbols),
                "candles": candles,
                "seconds": round(time.monotonic() - started, 1),
            },
        )
        if not self.t.history:
            return
        candles, failed = await self._backfill.history(
            sorted(self.universe), self.settings.history_hours, self._missing, before_ms=armed_from
        )
        log.info("history backfilled", extra={"candles": candles, "failed": len(failed)})

    async def _seed_stored(self, symbols: list[str], start_ms: int) -> dict[str, int]:
        """Seed the detector with the closed minutes `candles_1m` already holds from `start_ms`
        on; per symbol, the first minute REST must still fetch (PostgreSQL down: all of them)."""
        try:
            stored = await load_stored(self.pool, start_ms, self.exchange_clock.now_ms())
        except db_candles.PG_ERRORS as exc:
            log.warning("stored candles not read, fetching from REST", extra={"error": repr(exc)})
            return {}
        first_missing: dict[str, int] = {}
        for n, symbol in enumerate(symbols, 1):
            klines = stored.get(symbol)
            if not klines:
                continue
            self.detector.seed(symbol, klines)
            self.flows.seed(klines)
            have = {k.open_time_ms for k in klines}
            missing = start_ms
            while missing in have:
                missing += MINUTE_MS
            first_missing[symbol] = missing
            if missing > start_ms and missing - MINUTE_MS > self._last_closed.get(symbol, 0):
                self._last_closed[symbol] = missing - MINUTE_MS
            if n % LIVE_SLICE == 0:
                await asyncio.sleep(0)  # hundreds of symbols: let frames in between
        return first_missing

    async def _hour_totals_loop(self) -> None:
        assert self._hour_totals is not None
        await self.armed.wait()
        await self._hour_totals.run(self.t.hour_total_interval)

    async def _missing(self, symbol: str, first_ms: int, last_ms: int) -> list[tuple[int, int]]:
        """Inclusive ranges of open times in [first_ms, last_ms] missing from candles_1m."""
        info = self.universe.get(symbol)
        if info is not None and info.onboard_ms is not None:
            first_ms = max(first_ms, info.onboard_ms - info.onboard_ms % MINUTE_MS)
        if last_ms < first_ms:
            return []
        missing = await db_candles.missing_minutes(
            self.pool, symbol, utc_from_ms(first_ms), utc_from_ms(last_ms + MINUTE_MS)
        )
        ranges: list[tuple[int, int]] = []
        for when in missing:
            ms = int(when.timestamp() * 1000)
            if ranges and ms - ranges[-1][1] == MINUTE_MS:
                ranges[-1] = (ranges[-1][0], ms)
            else:
                ranges.append((ms, ms))
        return ranges

    async def _audit_loop(self) -> None:
        """Safety net: every few minutes, refetch holes of the last two hours in candles_1m."""
        await self.armed.wait()
        while True:
            raise_if_cancelling()
            await asyncio.sleep(self.t.audit_interval)
            now = self.exchange_clock.now_ms()
            last = now - now % MINUTE_MS - 3 * MINUTE_MS  # closed and surely flushed by now
            first = now - now % HOUR_MS - HOUR_MS
            try:
                for symbol in sorted(self.universe):
                    holes = await self._missing(symbol, first, last)
                    if holes:
                        self._want_gap(symbol, holes[0][0])
            except db_candles.PG_ERRORS as exc:
                log.warning("candle audit failed", extra={"error": repr(exc)})

    # --- side loops ---------------------------------------------------------------------

    async def _ticker_loop(self) -> None:
        assert self._rest is not None
        while True:
            raise_if_cancelling()
            try:
                rows = await self._rest.ticker_24hr()
            except BinanceError as exc:
                log.warning("24h tickers not refreshed", extra={"error": str(exc)})
            else:
                for row in rows if isinstance(rows, list) else ():
                    try:
                        symbol = str(row["symbol"])
                        change, volume = float(row["priceChangePercent"]), float(row["quoteVolume"])
                    except (KeyError, TypeError, ValueError):
                        continue
                    if symbol in self.universe:
                        self.live.set_24h(symbol, change, volume)
            await asyncio.sleep(self.t.ticker_refresh)

    async def _live_loop(self) -> None:
        while True:
            raise_if_cancelling()
            await asyncio.sleep(self.t.live_flush)
            dirty, self._dirty = self._dirty, set()
            for n, symbol in enumerate(dirty, 1):
                snap = self.detector.snapshot(symbol)
                if snap is not None and symbol in self.universe:
                    self.live.update(snap)
                if n % LIVE_SLICE == 0:
                    await asyncio.sleep(0)  # hundreds of symbols: let frames and alerts in between
            try:
                await self.live.flush()
            except REDIS_ERRORS as exc:
                log.warning("market state not written", extra={"error": repr(exc)})

    def health(self) -> dict[str, Any]:
        conns = self.streams.snapshot()
        now = time.monotonic()
        ages = [
            None if c.last_message_at is None else now - c.last_message_at for c in self.streams.connections
        ]
        lags = [c.lag_ms for c in self.streams.connections if c.lag_ms is not None]
        all_open = bool(conns) and all(c.state == "open" for c in self.streams.connections)
        fresh = all(a is not None and a < self.t.silence_timeout for a in ages)
        rest = self._rest
        metrics.ALERT_QUEUE.set(self._alerts.qsize())
        without = sorted(self.detector.without_denominator())
        metrics.WITHOUT_DENOMINATOR.set(len(without))
        if rest is not None:
            metrics.REST_WEIGHT_USED.set(rest.budget.used)
        return {
            "ok": bool(self.universe) and all_open and fresh and self.armed.is_set(),
            "ts": self.clock.now().astimezone(UTC).isoformat(timespec="seconds"),
            "armed": self.armed.is_set(),
            "shard": str(self.shard),
            "symbols": len(self.universe),
            "connections": conns,
            "lag_ms": round(max(lags), 1) if lags else None,
            "last_message_age_s": round(max((a for a in ages if a is not None), default=0.0), 3),
            "alerts_emitted": self.alerts_emitted,
            "detect_latency_ms_p50": round(median(self.latencies) * 1000, 2) if self.latencies else None,
            "alert_queue": self._alerts.qsize(),
            # symbols that cannot SPIKE: the previous hour's minutes (or 1h kline) are not all known
            "without_denominator": len(without),
            "without_denominator_symbols": without[:20],
            "updates_waiting": self.detector.updates_waiting,
            "alerts_held_back": self.detector.held_back,
            "candles_pending": self.writer.pending,
            "mark_snapshots_pending": self.marks.pending,
            "backfilled_candles": self._backfill.stats.candles if self._backfill else 0,
            "rest_weight_used": rest.budget.used if rest else None,
            "open_interest_warm": self._warm_oi.warm if self._warm_oi else 0,
            "open_interest_turned_away": self._warm_oi.turned_away if self._warm_oi else 0,
            "rest_paused_s": round(rest.budget.paused_for, 1) if rest else None,
            "exchange_time": (
                utc_from_ms(self.exchange_clock.now_ms()).isoformat(timespec="seconds")
                if self.exchange_clock.known
                else None
            ),
        }

    async def _write_health(self, *, stopped: bool = False) -> None:
        snapshot: dict[str, Any] = (
            {"ok": False, "state": "stopped", "ts": datetime.now(UTC).isoformat(timespec="seconds")}
            if stopped
            else self.health()
        )
        try:
            await self.redis.set(
                self.names.ingest_shard_health(self.shard),
                orjson.dumps(snapshot),
                ex=max(1, int(self.t.health_ttl if not stopped else self.t.health_interval * 2)),
            )
            if self.shard.count > 1:
                written = int(time.time() * 1000)
                await self.redis.hset(self.names.ingest_shards, str(self.shard), str(written))
        except REDIS_ERRORS as exc:
            log.warning("health snapshot not written", extra={"error": repr(exc)})

    async def _health_loop(self) -> None:
        while True:
            raise_if_cancelling()
            await self._write_health()
            await asyncio.sleep(self.t.health_interval)
