"""Fault suite: the suite's own PostgreSQL restarted while candles and alerts flow.

`volspike run` (ingest, bot and webapp in one process) follows the simulator; PostgreSQL is
stopped (fast shutdown: every session gets `AdminShutdownError`) and started again while the
sim clock moves and a spike is under way. The process must stay up, hold the alert until it
can be written, fill the candles of the outage and deliver everything once.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fault_harness import open_world, sim_start_ms
from tests.fault_processes import MINUTE_MS

# Several real processes start per scenario: slow on a busy 2-core machine, never hanging.
pytestmark = pytest.mark.timeout(240)


async def test_postgres_restart_while_candles_and_alerts_flow_loses_nothing(
    request: pytest.FixtureRequest,
) -> None:
    async with open_world(request, start_ms=sim_start_ms(minute=10, span_minutes=8), seed=14) as world:
        started = time.time()
        run = await world.start("run", "run", "--no-migrate")
        await world.wait_ingest_healthy(started)
        await world.wait_bot_ready(started)
        first, during, probe = sorted(await world.followed())[:3]
        await world.spike(first)
        await world.wait_alert(first, "SPIKE")

        await world.spike(during)  # its volume arrives while PostgreSQL goes away
        await asyncio.to_thread(world.pg.stop, "fast")
        outage = time.monotonic()
        now = await world.sim.now_ms()
        await world.sim.step_to(now + 2 * MINUTE_MS)  # candles close while nothing can be written
        await asyncio.sleep(2.0)
        await asyncio.to_thread(world.pg.start)
        back = time.time()

        assert run.running, f"volspike run exited with {run.returncode}\n{world.logs()}"
        await world.wait_ingest_healthy(back)
        await world.wait_alert(during, "SPIKE", timeout=60)
        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE", timeout=60)
        world.recovered("PostgreSQL restart: outage start to next alert delivered", time.monotonic() - outage)
        await world.final_checks()
