"""`run_ingest` end to end: simulator over real HTTP and websockets, real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from core.clock import utc_from_ms
from core.redis_names import RedisNames
from core.settings import Settings
from db import candles as db_candles
from ingest.service import run_ingest
from simulator.config import SimConfig
from simulator.server import SimServer
from tests.stopping import stop_within

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
FAST: dict[str, Any] = {
    "health_interval": 0.2,
    "republish_interval": 0.5,
    "live_flush": 0.2,
    "candle_flush": 0.2,
    "silence_timeout": 5.0,
    "backoff_base": 0.1,
    "backoff_cap": 0.5,
    "gap_retry": 0.2,
}


def sim_start_ms() -> int:
    """Ten minutes into the current hour: no hour boundary during a test."""
    now = int(time.time() * 1000)
    return now - now % HOUR_MS + 10 * MINUTE_MS


def market() -> SimConfig:
    """8 perpetuals, seed 21, ten minutes into the current hour, no natural spikes."""
    return SimConfig(
        symbols=8,
        seed=21,
        speed=10.0,
        start_time=sim_start_ms(),
        update_interval=0.1,
        natural_spike_rate=0.0,
        late_close_probability=0.2,
        late_close_max_delay=0.3,
    )


def settings_for(settings: Settings, sim: SimServer) -> Settings:
    """`settings` pointed at `sim`."""
    return settings.model_copy(
        update={
            "binance_rest_url": sim.rest_url,
            "binance_ws_url": sim.ws_url,
            "max_streams_per_connection": 5,
            "history_hours": 2,
        }
    )


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(market()) as server:
        yield server


@pytest.fixture
def ingest_settings(settings: Settings, sim: SimServer) -> Settings:
    return settings_for(settings, sim)


async def poll(check: Callable[[], Awaitable[bool] | bool], timeout: float = 20.0, what: str = "") -> None:
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


async def health(redis: Redis, names: RedisNames) -> dict[str, Any] | None:
    raw = await redis.get(names.ingest_health)
    return None if raw is None else orjson.loads(raw)


@contextlib.asynccontextmanager
async def ingest(settings: Settings, pool: asyncpg.Pool, redis: Redis, **timings: Any) -> AsyncIterator[None]:
    task = asyncio.create_task(run_ingest(settings, pool, redis, **{**FAST, **timings}))
    try:
        yield
    finally:
        await stop_within(task, 10, "ingest")


async def armed(redis: Redis, names: RedisNames) -> None:
    async def check() -> bool:
        snap = await health(redis, names)
        return bool(snap and snap.get("armed") and snap.get("ok"))

    await poll(check, what="detection armed and healthy")


async def spikes(pool: asyncpg.Pool, symbol: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT id, hour_ts, published_at FROM alerts WHERE symbol = $1 AND alert_type = 'SPIKE'", symbol
    )


async def stream_entries(redis: Redis, names: RedisNames, symbol: str) -> list[dict[str, Any]]:
    entries = await redis.xrange(names.alerts_stream)
    alerts = [orjson.loads(fields[b"alert"]) for _, fields in entries]
    return [a for a in alerts if a["symbol"] == symbol]


async def closed_candles_cover(pool: asyncpg.Pool, symbols: list[str], first_ms: int, last_ms: int) -> bool:
    for symbol in symbols:
        missing = await db_candles.missing_minutes(
            pool, symbol, utc_from_ms(first_ms), utc_from_ms(last_ms + MINUTE_MS)
        )
        if missing:
            return False
    return True


async def followed(pool: asyncpg.Pool) -> list[str]:
    return [r["symbol"] for r in await pool.fetch("SELECT symbol FROM symbols WHERE active ORDER BY symbol")]


async def test_spike_in_the_sim_makes_exactly_one_spike_row_and_stream_entry(
    ingest_settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, sim: SimServer
) -> None:
    async with ingest(ingest_settings, db, redis):
        await armed(redis, names)
        sim.trigger_spike("SOLUSDT", 6.0, min_quote_volume=ingest_settings.spike_min_quote_volume * 2)

        async def published() -> bool:
            rows = await spikes(db, "SOLUSDT")
            return bool(rows) and rows[0]["published_at"] is not None

        await poll(published, what="SPIKE row published")
        await asyncio.sleep(1.0)  # more frames of the same spike arrive meanwhile

        rows = await spikes(db, "SOLUSDT")
        entries = await stream_entries(redis, names, "SOLUSDT")
        assert len(rows) == 1
        assert [e["alertType"] for e in entries] == ["SPIKE"]
        assert entries[0]["id"] == rows[0]["id"]
        assert entries[0]["volumeRatio"] >= ingest_settings.spike_multiple
        assert entries[0]["asset"] == "SOL"
        snap = await health(redis, names)
        assert snap is not None and snap["alerts_emitted"] == 1
        assert snap["symbols"] == 9  # 8 perpetuals + the non-ASCII one; quarterly, USDC, TradFi, SETTLING out
        assert {c["state"] for c in snap["connections"]} == {"open"}
    after = await health(redis, names)
    assert after is not None and after["ok"] is False and after["state"] == "stopped"


async def test_restart_mid_hour_sends_no_second_spike_and_loses_no_candle(
    ingest_settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, sim: SimServer
) -> None:
    async with ingest(ingest_settings, db, redis):
        await armed(redis, names)
        sim.trigger_spike("XRPUSDT", 6.0, min_quote_volume=ingest_settings.spike_min_quote_volume * 2)
        await poll(lambda: _has_rows(db, "XRPUSDT"), what="first SPIKE")

    down_from = sim.now_ms()
    sim.advance(300)  # the service is down for five sim minutes

    async with ingest(ingest_settings, db, redis):
        await armed(redis, names)
        symbols = await followed(db)
        hour = sim.now_ms() - sim.now_ms() % HOUR_MS
        target = sim.now_ms() - sim.now_ms() % MINUTE_MS - 2 * MINUTE_MS  # surely closed and flushed

        await poll(
            lambda: closed_candles_cover(db, symbols, hour - HOUR_MS, target),
            what="no missing candle in the previous and current hour",
        )
        await asyncio.sleep(1.0)
        assert target > down_from
        assert len(await spikes(db, "XRPUSDT")) == 1
        assert len(await stream_entries(redis, names, "XRPUSDT")) == 1


async def _has_rows(pool: asyncpg.Pool, symbol: str) -> bool:
    return bool(await spikes(pool, symbol))


async def test_dropped_connections_are_backfilled_without_a_gap_in_candles(
    ingest_settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, sim: SimServer
) -> None:
    async with ingest(ingest_settings, db, redis):
        await armed(redis, names)
        symbols = await followed(db)
        dropped_at = sim.now_ms()
        sim.drop_connections(refuse_seconds=2.0)
        sim.advance(240)  # four sim minutes pass while nobody can connect

        async def reconnected() -> bool:
            snap = await health(redis, names)
            return bool(snap and snap["ok"] and sum(c["reconnects"] for c in snap["connections"]) >= 2)

        await poll(reconnected, what="connections back")
        hour = sim.now_ms() - sim.now_ms() % HOUR_MS
        target = sim.now_ms() - sim.now_ms() % MINUTE_MS - MINUTE_MS
        assert target - dropped_at >= 2 * MINUTE_MS

        await poll(
            lambda: closed_candles_cover(db, symbols, hour - HOUR_MS, target),
            what="the gap filled in candles_1m",
        )
        backfill_requests = [
            e for e in sim.request_log("/fapi/v1/klines") if e["time"] > time.time() - 30 and e["weight"] == 1
        ]
        assert backfill_requests, "gap fetched with small (weight 1) kline requests"


async def test_429_storm_at_start_is_obeyed_and_start_up_completes(
    ingest_settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, sim: SimServer
) -> None:
    sim.fail_rest(4, retry_after=1, status=429)

    async with ingest(ingest_settings, db, redis):
        await armed(redis, names)

    log = sim.request_log()
    refused = [e["time"] for e in log if e["status"] == 429]
    assert len(refused) == 4
    for at in refused:
        inside = [e for e in log if at < e["time"] < at + 1 - 0.05]
        assert inside == [], "no request may reach the exchange inside a Retry-After window"


async def test_listing_and_delisting_are_followed_without_restart(
    ingest_settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, sim: SimServer
) -> None:
    async with ingest(ingest_settings, db, redis, universe_refresh=0.3):
        await armed(redis, names)
        sim.list_symbol("NEWUSDT", hourly_quote=5e6)
        sim.delist_symbol("ADAUSDT")

        async def changed() -> bool:
            active = await followed(db)
            return "NEWUSDT" in active and "ADAUSDT" not in active

        await poll(changed, what="symbols table updated")
        await poll(
            lambda: "newusdt@kline_1m" in sim.hub.subs and "adausdt@kline_1m" not in sim.hub.subs,
            what="streams updated",
        )
        await poll(
            lambda: _market_has(redis, names, "NEWUSDT"), what="the new listing in the live market table"
        )
        snap = await health(redis, names)
        assert snap is not None and snap["symbols"] == 9
        assert sum(c["reconnects"] for c in snap["connections"]) == 0


async def _market_has(redis: Redis, names: RedisNames, symbol: str) -> bool:
    return bool(await redis.hexists(names.market, symbol))


async def test_malformed_frames_are_counted_and_served_on_the_metrics_port(
    ingest_settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, sim: SimServer
) -> None:
    port = _free_port()
    settings = ingest_settings.model_copy(update={"ingest_metrics_port": port})
    async with ingest(settings, db, redis), aiohttp.ClientSession() as http:
        await armed(redis, names)
        before = _malformed_total()
        sim.send_malformed(6)

        await poll(
            lambda: _malformed_total() >= before + 12, what="malformed frames counted"
        )  # 2 connections
        messages = sum(c["messages"] for c in (await health(redis, names) or {})["connections"])
        await poll(
            lambda: _more_messages(redis, names, messages), what="frames still flowing after the bad ones"
        )
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
        assert resp.status == 200
        assert "volspike_ingest_ws_malformed_total" in text
        assert "volspike_ingest_ws_messages_total" in text
        snap = await health(redis, names)
        assert snap is not None and snap["ok"] and sum(c["reconnects"] for c in snap["connections"]) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _malformed_total() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "volspike_ingest_ws_malformed":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


async def _more_messages(redis: Redis, names: RedisNames, than: int) -> bool:
    snap = await health(redis, names)
    return bool(snap) and sum(c["messages"] for c in snap["connections"]) > than + 20  # type: ignore[index]


async def test_funding_and_mark_history_is_recorded_from_the_mark_price_stream(
    db: asyncpg.Pool, redis: Redis, names: RedisNames, ingest_settings: Settings
) -> None:
    # The sim runs 10× fast: a `!markPrice@arr@1s` frame every 10 sim seconds, a 30 s interval
    # boundary every 3 real seconds.
    async with ingest(ingest_settings, db, redis, mark_snapshot_interval=30.0):
        await armed(redis, names)
        symbols = await followed(db)

        async def two_rounds() -> bool:
            rows = await db.fetch("SELECT symbol, ts FROM mark_snapshots")
            times = {r["ts"] for r in rows}
            return len(times) >= 2 and all(
                {r["symbol"] for r in rows if r["ts"] == ts} == set(symbols) for ts in sorted(times)[:2]
            )

        await poll(two_rounds, what="two rounds of mark snapshots")
    rows = await db.fetch("SELECT ts, mark_price, funding_rate FROM mark_snapshots")
    assert all(int(r["ts"].timestamp()) % 30 == 0 for r in rows)
    assert all(r["mark_price"] > 0 and r["funding_rate"] is not None for r in rows)
