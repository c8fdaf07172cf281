"""Every alert's figures are real: restarts, reconnect gaps and refused REST, end to end.

The simulator serves REST and websockets on 127.0.0.1 at speed 1, its clock moved by
`sim.advance()` (hours pass in a test of seconds); `IngestService` runs unchanged against it
with real PostgreSQL and Redis. Expected figures come from the simulator's own market model,
the truth that its REST and streams are derived from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from core.clock import utc_from_ms
from core.redis_names import RedisNames
from core.settings import Settings
from db import candles as db_candles
from ingest.detector import CLOSE_GRACE_MS, FULL_WAIT_MS
from ingest.service import IngestService, IngestTimings
from simulator.config import SimConfig
from simulator.server import SimServer
from tests.stopping import stop_within
from webapp.app import create_app

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
SYMBOL = "BTCUSDT"
FAST: dict[str, Any] = {
    "health_interval": 0.2,
    "republish_interval": 0.5,
    "live_flush": 0.2,
    "candle_flush": 0.2,
    "silence_timeout": 5.0,
    "backoff_base": 0.1,
    "backoff_cap": 0.5,
    "gap_retry": 0.2,
    "hour_total_interval": 0.2,
    "hour_total_retry": 0.3,
    "history": False,
}
REFUSE_ALL = 1_000_000  # forced 429s: every REST request until `fail_rest(0)`


def hour_ago(hours: int) -> int:
    """Start of the wall-clock hour `hours` before the current one: the sim's hour P."""
    now = int(time.time() * 1000)
    return now - now % HOUR_MS - hours * HOUR_MS


StartSim = Callable[[int], Awaitable[SimServer]]


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    servers: list[SimServer] = []

    async def start(at_ms: int) -> SimServer:
        server = SimServer(
            SimConfig(
                symbols=3,
                seed=5,
                speed=1.0,
                start_time=at_ms,
                update_interval=0.1,
                natural_spike_rate=0.0,
                late_close_probability=0.0,
            )
        )
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def settings_for(settings: Settings, sim: SimServer) -> Settings:
    return settings.model_copy(
        update={
            "binance_rest_url": sim.rest_url,
            "binance_ws_url": sim.ws_url,
            "max_streams_per_connection": 5,
            "spike_min_quote_volume": 1.0,  # the ratio alone decides
        }
    )


@contextlib.asynccontextmanager
async def running(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, **timings: Any
) -> AsyncIterator[IngestService]:
    service = IngestService(settings, pool, redis, timings=IngestTimings(**{**FAST, **timings}))
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(30):
            armed = asyncio.create_task(service.armed.wait())
            await asyncio.wait({armed, task}, return_when=asyncio.FIRST_COMPLETED)
            armed.cancel()
        if task.done():
            task.result()  # start-up failed: show why
        yield service
    finally:
        await stop_within(task, 10, "ingest")


async def poll(check: Callable[[], Awaitable[bool] | bool], timeout: float = 30.0, what: str = "") -> None:
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = check()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or check}") from None


async def alert_row(pool: asyncpg.Pool, alert_type: str, symbol: str = SYMBOL) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT * FROM alerts WHERE symbol = $1 AND alert_type = $2", symbol, alert_type
    )


async def wait_row(pool: asyncpg.Pool, alert_type: str, symbol: str = SYMBOL) -> asyncpg.Record:
    async def present() -> bool:
        return await alert_row(pool, alert_type, symbol) is not None

    await poll(present, what=f"{alert_type} row of {symbol}")
    row = await alert_row(pool, alert_type, symbol)
    assert row is not None
    return row


def minute_q(sim: SimServer, open_ms: int) -> float:
    candle = sim.market.candle(SYMBOL, "1m", open_ms, sim.now_ms())
    assert candle is not None
    return candle.q


def hour_q(sim: SimServer, hour_ms: int) -> float:
    candle = sim.market.candle(SYMBOL, "1h", hour_ms, sim.now_ms())
    assert candle is not None
    return candle.q


def hour_klines_asked(sim: SimServer, hour_ms: int, status: int) -> int:
    return sum(
        1
        for e in sim.request_log("/fapi/v1/klines")
        if e["params"].get("interval") == "1h"
        and e["params"].get("startTime") == str(hour_ms)
        and e["params"].get("limit") == "1"
        and e["status"] == status
    )


async def no_alert_has_a_zero_figure(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch("SELECT alert_type, current_volume, previous_volume, price FROM alerts")
    assert rows
    for row in rows:
        assert row["current_volume"] > 0 and row["previous_volume"] > 0 and row["price"] > 0, dict(row)


async def test_restart_with_a_due_half_and_a_due_full_update_sends_them_with_true_totals(
    settings: Settings, db: asyncpg.Pool, redis: Redis, start_sim: StartSim
) -> None:
    p = hour_ago(3)
    sim = await start_sim(p + 5 * MINUTE_MS + 10_000)
    cfg = settings_for(settings, sim)
    async with running(cfg, db, redis):
        sim.trigger_spike(SYMBOL, 5.0)
        spike = await wait_row(db, "SPIKE")
    assert (spike["detected_at"] - utc_from_ms(p)).total_seconds() < 20 * 60  # HALF and FULL owed
    assert spike["previous_volume"] == pytest.approx(hour_q(sim, p - HOUR_MS), rel=1e-9)

    # a deploy: down for half an hour, back at P+35 with the HALF due and nothing loaded yet
    sim.advance(30 * 60)
    sim.clear_request_log()
    async with running(cfg, db, redis):
        half = await wait_row(db, "HALF_UPDATE")
    # the minutes candles_1m holds were loaded from it: REST was asked only for the rest
    starts = [
        int(e["params"]["startTime"])
        for e in sim.request_log("/fapi/v1/klines")
        if e["params"]["symbol"] == SYMBOL and e["params"]["interval"] == "1m"
    ]
    assert starts and min(starts) >= p + 5 * MINUTE_MS
    minute = int((half["detected_at"] - utc_from_ms(p)).total_seconds()) // 60
    assert 35 <= minute < 40
    closed = sum(minute_q(sim, p + m * MINUTE_MS) for m in range(minute))
    upto = closed + minute_q(sim, p + minute * MINUTE_MS)  # with the minute in progress, whole
    assert closed * (1 - 1e-9) <= half["current_volume"] <= upto * (1 + 1e-9)
    assert half["previous_volume"] == pytest.approx(spike["previous_volume"])
    assert half["volume_ratio"] == pytest.approx(half["current_volume"] / half["previous_volume"])

    # another one across the close: back at N+20 s with the FULL due
    sim.advance((p + HOUR_MS + 20_000 - sim.now_ms()) / 1000)
    async with running(cfg, db, redis):
        full = await wait_row(db, "FULL_UPDATE")
    assert full["current_volume"] == pytest.approx(hour_q(sim, p), rel=1e-9)
    assert full["previous_volume"] == pytest.approx(spike["previous_volume"])
    assert full["volume_ratio"] == pytest.approx(full["current_volume"] / full["previous_volume"])
    await no_alert_has_a_zero_figure(db)


async def test_previous_hour_with_a_hole_and_the_1h_kline_refused_then_granted_makes_no_false_spike(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, start_sim: StartSim
) -> None:
    p = hour_ago(3)
    n = p + HOUR_MS
    sim = await start_sim(p + 20 * MINUTE_MS)
    cfg = settings_for(settings, sim)
    # the gap worker is slowed to a crawl: only the 1h kline can complete the hour here
    async with running(cfg, db, redis, gap_retry=600.0, audit_interval=600.0) as service:
        detector = service.detector
        await poll(lambda: SYMBOL in detector.symbols and detector.without_denominator() == [], what="armed")
        sim.fail_rest(REFUSE_ALL, retry_after=1)
        # the clock jumps to the next hour while connected: minutes 21-59 of P never stream
        sim.advance((n + 1_000 - sim.now_ms()) / 1000)
        await poll(lambda: service.detector.event_time_ms >= n + CLOSE_GRACE_MS + 1_000, what="hour N")
        assert SYMBOL in service.detector.without_denominator()

        # 2.5× the true previous hour is no spike, but it is 3× the hour with its hole
        info = sim.trigger_spike(SYMBOL, 2.5)
        seen_of_p = sum(minute_q(sim, p + m * MINUTE_MS) for m in range(21))
        assert info.target_hour_quote / seen_of_p >= 3.0 > info.target_hour_quote / hour_q(sim, p)

        def arrived() -> bool:
            snap = service.detector.snapshot(SYMBOL)
            return snap is not None and snap.current_volume >= 0.99 * info.target_hour_quote

        await poll(arrived, what="the volume streamed")
        await poll(lambda: hour_klines_asked(sim, p, 429) > 0, what="the 1h kline refused")
        await asyncio.sleep(0.5)
        assert await alert_row(db, "SPIKE") is None
        snap = service.detector.snapshot(SYMBOL)
        assert snap is not None and snap.previous_volume == 0 and snap.ratio == 0

        # visible: ingest's health snapshot, the gauge, and the webapp's /health that shows it
        async def reported() -> bool:
            raw = await redis.get(names.ingest_health)
            health = orjson.loads(raw) if raw else {}
            return SYMBOL in health.get("without_denominator_symbols", [])

        await poll(reported, what="the health snapshot")
        gauge = REGISTRY.get_sample_value("volspike_ingest_symbols_without_denominator")
        assert gauge is not None and gauge >= 1
        async with TestClient(TestServer(create_app(cfg, pool=db, redis=redis))) as client:
            body = await (await client.get("/health")).json()
        ingest = body["services"]["ingest"]
        assert ingest["without_denominator"] >= 1 and SYMBOL in ingest["without_denominator_symbols"]

        sim.fail_rest(0)  # granted
        await poll(lambda: SYMBOL not in service.detector.without_denominator(), what="the 1h kline")
        assert hour_klines_asked(sim, p, 200) >= 1
        hole = await db_candles.missing_minutes(db, SYMBOL, utc_from_ms(p + 21 * MINUTE_MS), utc_from_ms(n))
        assert len(hole) == 39, "the minutes are still missing: the 1h kline is the denominator"
        snap = service.detector.snapshot(SYMBOL)
        assert snap is not None and snap.previous_volume == pytest.approx(hour_q(sim, p), rel=1e-9)
        assert snap.ratio == pytest.approx(snap.current_volume / snap.previous_volume)
        assert 2.4 < snap.ratio < 3.0
        assert await alert_row(db, "SPIKE") is None

        sim.trigger_spike(SYMBOL, 4.0)  # a real spike now
        spike = await wait_row(db, "SPIKE")
    assert spike["previous_volume"] == pytest.approx(hour_q(sim, p), rel=1e-9)
    assert spike["volume_ratio"] == pytest.approx(spike["current_volume"] / spike["previous_volume"])
    assert spike["volume_ratio"] >= 3.0


async def spike_then_lose_the_close(
    sim: SimServer, db: asyncpg.Pool, service: IngestService, p: int, *, status: int
) -> asyncpg.Record:
    """SPIKE at minute 5 of P; then the connection drops and REST answers `status` (429 or
    418) across the close, and the clock jumps to N+1 min: the FULL_UPDATE is due with minutes
    6-59 of P missing."""
    sim.trigger_spike(SYMBOL, 5.0)
    spike = await wait_row(db, "SPIKE")
    sim.fail_rest(REFUSE_ALL, retry_after=1, status=status)
    sim.drop_connections(refuse_seconds=1.0)
    sim.advance((p + HOUR_MS + MINUTE_MS - sim.now_ms()) / 1000)
    await poll(lambda: service.detector.event_time_ms >= p + HOUR_MS + MINUTE_MS, what="reconnected")
    return spike


async def test_full_update_with_the_last_minutes_missing_waits_for_the_backfill_and_reports_the_exact_total(
    settings: Settings, db: asyncpg.Pool, redis: Redis, start_sim: StartSim
) -> None:
    p = hour_ago(3)
    sim = await start_sim(p + 5 * MINUTE_MS + 10_000)
    async with running(settings_for(settings, sim), db, redis) as service:
        spike = await spike_then_lose_the_close(sim, db, service, p, status=429)
        await asyncio.sleep(1.5)  # many event-time ticks past the close + grace
        assert await alert_row(db, "FULL_UPDATE") is None, "an understated FULL must not leave"
        assert service.detector.updates_waiting == 1
        sim.fail_rest(0)
        full = await wait_row(db, "FULL_UPDATE")
    assert full["current_volume"] == pytest.approx(hour_q(sim, p), rel=1e-9)
    assert full["previous_volume"] == pytest.approx(spike["previous_volume"])
    assert full["volume_ratio"] == pytest.approx(full["current_volume"] / full["previous_volume"])


async def test_full_update_still_incomplete_after_the_bound_is_dropped_with_a_log_line_and_a_metric(
    settings: Settings, db: asyncpg.Pool, redis: Redis, start_sim: StartSim, caplog: pytest.LogCaptureFixture
) -> None:
    labels = {"type": "FULL_UPDATE", "reason": "full_incomplete"}
    before = REGISTRY.get_sample_value("volspike_ingest_alerts_held_back_total", labels) or 0.0
    p = hour_ago(3)
    sim = await start_sim(p + 5 * MINUTE_MS + 10_000)
    async with running(settings_for(settings, sim), db, redis) as service:
        await spike_then_lose_the_close(sim, db, service, p, status=418)
        seen = service.detector.event_time_ms
        await asyncio.sleep(0.5)
        sim.advance(FULL_WAIT_MS / 1000 + 30)  # REST still refused past the bound

        def dropped() -> bool:
            return service.detector.updates_waiting == 0

        await poll(dropped, what="the FULL_UPDATE given up")
        assert service.detector.event_time_ms >= seen + FULL_WAIT_MS
        sim.fail_rest(0)
        await poll(lambda: service.detector.incomplete_hours() == [], what="the hour completed late")
        await asyncio.sleep(0.5)
    assert await alert_row(db, "FULL_UPDATE") is None
    after = REGISTRY.get_sample_value("volspike_ingest_alerts_held_back_total", labels)
    assert after == before + 1
    held = [
        (r.levelno, r.symbol, r.reason)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "alert held back" and r.type == "FULL_UPDATE"  # type: ignore[attr-defined]
    ]
    assert held == [(logging.WARNING, SYMBOL, "full_incomplete")]
