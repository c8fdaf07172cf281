"""The outcomes job inside the real ingest service (simulator over HTTP and websockets, real
PostgreSQL and Redis): shard 0 computes the outcomes owed at start-up and again as time passes."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from core.clock import ManualClock, hour_floor
from core.settings import Settings
from simulator.server import SimServer
from tests.outcome_harness import Scenario, write
from tests.test_ingest_service import ingest, market, poll, settings_for


async def horizon(pool: asyncpg.Pool, alert_id: int) -> int | None:
    value: int | None = await pool.fetchval(
        "SELECT horizon_minutes FROM alert_outcomes WHERE alert_id = $1", alert_id
    )
    return value


async def test_ingest_computes_outcomes_at_start_and_as_horizons_pass(
    settings: Settings, db: asyncpg.Pool, redis: Redis
) -> None:
    clock = ManualClock()
    detected = hour_floor(clock.now() - timedelta(hours=2)) + timedelta(minutes=20, seconds=30)
    alert_id = await write(db, Scenario(), detected=detected)

    async def four_hours() -> bool:
        return await horizon(db, alert_id) == 240

    async with (
        SimServer(market()) as sim,
        ingest(settings_for(settings, sim), db, redis, clock=clock, outcomes_interval=0.2),
    ):
        await poll(lambda: horizon(db, alert_id), what="the outcome owed at start")
        assert await horizon(db, alert_id) == 60  # +4 h has not passed by the clock
        clock.set(detected + timedelta(hours=4, minutes=3))
        await poll(four_hours, what="the +4 h outcome once the clock passes it")
    change = await db.fetchval("SELECT change_4h FROM alert_outcomes WHERE alert_id = $1", alert_id)
    assert change == pytest.approx(5.0)
