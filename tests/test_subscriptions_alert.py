"""End to end: a listing subscribed while its connection is in a handshake (a reconnect, or the
successor of a rotation) still alerts. Simulator over real HTTP and websockets, real PostgreSQL
and Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from core.redis_names import RedisNames
from core.settings import Settings
from ingest.service import IngestService, IngestTimings
from simulator.config import SimConfig
from simulator.server import SimServer
from tests.stopping import stop_within
from tests.test_ingest_service import FAST, HOUR_MS, _market_has, poll, sim_start_ms, spikes

NEW = "NEWUSDT"


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    config = SimConfig(
        symbols=8,
        seed=21,
        speed=10.0,
        start_time=sim_start_ms(),
        update_interval=0.1,
        natural_spike_rate=0.0,
        late_close_probability=0.0,
    )
    async with SimServer(config) as server:
        try:
            yield server
        finally:
            server.release_handshakes()


@contextlib.asynccontextmanager
async def running(service: IngestService) -> AsyncIterator[None]:
    task = asyncio.create_task(service.run())
    try:
        yield
    finally:
        await stop_within(task, 10, "ingest")


@pytest.mark.parametrize("moment", ["reconnect", "rotation"])
async def test_listing_subscribed_during_a_handshake_produces_its_spike(
    moment: str, settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, sim: SimServer
) -> None:
    ingest_settings = settings.model_copy(
        update={
            "binance_rest_url": sim.rest_url,
            "binance_ws_url": sim.ws_url,
            "max_streams_per_connection": 6,  # 9 symbols + mark prices: room left on the second
            "history_hours": 2,
        }
    )
    lifetime = 1.5 if moment == "rotation" else 23 * 3600.0
    timings = IngestTimings(
        **{**FAST, "universe_refresh": 0.3, "reconcile_interval": 3600.0, "max_lifetime": lifetime}
    )
    service = IngestService(ingest_settings, db, redis, timings=timings)

    async with running(service):
        await poll(lambda: service.armed.is_set(), what="detection armed")
        conns = service.streams.connections
        assert len(conns) == 2

        sim.hold_handshakes()
        if moment == "reconnect":
            sim.drop_connections()
        await poll(lambda: sim.held_handshakes == 2, what="both (re)connections inside their handshakes")
        # a listing the exchange has traded for three hours: its previous hour is complete
        sim.list_symbol(NEW, hourly_quote=5e6, onboard_ms=sim.now_ms() - 3 * HOUR_MS)
        await poll(lambda: NEW in service.streams.symbols(), what="the listing followed")
        assert {c.state for c in conns} == {"connecting" if moment == "reconnect" else "open"}
        assert len(service.streams.connections) == 2  # fitted on a connection in its handshake
        before = set(sim.hub.connections)
        # the next rotations wait: the successors have to carry the listing themselves
        sim.release_handshakes(keep_holding=moment == "rotation")
        await poll(
            lambda: len(sim.hub.connections) == 2 and not before & set(sim.hub.connections),
            what="only the new sockets left",
        )

        await poll(lambda: "newusdt@kline_1m" in sim.hub.subs, what="the listing subscribed on the wire")
        carrier = next(c for c in sim.hub.connections.values() if "newusdt@kline_1m" in c.streams)
        assert "newusdt" not in carrier.path  # by SUBSCRIBE after the handshake, not in the URL

        await poll(lambda: _market_has(redis, names, NEW), what="the listing's live frames")
        sim.trigger_spike(NEW, 6.0, min_quote_volume=ingest_settings.spike_min_quote_volume * 2)

        async def published() -> bool:
            rows = await spikes(db, NEW)
            return bool(rows) and rows[0]["published_at"] is not None

        await poll(published, what="the listing's SPIKE row published")
        assert len(await spikes(db, NEW)) == 1
        assert sum(c.repairs for c in service.streams.connections) == 0
        assert sum(c.reconnects for c in service.streams.connections) == (2 if moment == "reconnect" else 0)
        sim.release_handshakes()
