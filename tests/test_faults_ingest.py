"""Fault suite: `volspike ingest` killed with SIGKILL, mid-hour and in the last minute of an hour.

Ingest and the bot run as their own processes against the simulator, the Telegram look-alike
and the suite's own PostgreSQL and Redis. After the kill the sim clock moves on while ingest is
down, ingest is started again, and the update the spiked hour owes must carry the true figures.
"""

from __future__ import annotations

import time

import pytest

from tests.fault_harness import open_world, sim_start_ms
from tests.fault_processes import HOUR_MS, MINUTE_MS

# Several real processes start per scenario: slow on a busy 2-core machine, never hanging.
pytestmark = pytest.mark.timeout(240)


async def test_ingest_killed_mid_hour_resumes_with_true_half_update_and_no_gap(
    request: pytest.FixtureRequest,
) -> None:
    async with open_world(request, start_ms=sim_start_ms(minute=18, span_minutes=16), seed=11) as world:
        started = time.time()
        ingest = await world.start("ingest", "ingest")
        await world.start("bot", "bot")
        await world.wait_ingest_healthy(started)
        await world.wait_bot_ready(started)
        first, probe = sorted(await world.followed())[:2]
        await world.spike(first)
        await world.wait_alert(first, "SPIKE")
        hour = (await world.sim.now_ms()) // HOUR_MS * HOUR_MS

        # 29:30 into the hour, the HALF_UPDATE not yet due: the process dies.
        await world.sim.step_to(hour + 29 * MINUTE_MS + 30_000)
        await world.sim.settle()
        await ingest.kill()
        killed = time.monotonic()
        await world.sim.advance(90)  # down for 90 exchange seconds, across hh:30

        restarted = time.time()
        await ingest.start()
        await world.wait_ingest_healthy(restarted)
        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE")
        world.recovered("ingest SIGKILL mid-hour: restart to next alert delivered", time.monotonic() - killed)
        await world.wait_alert(first, "HALF_UPDATE")
        await world.final_checks()


async def test_ingest_killed_in_the_last_minute_of_an_hour_sends_the_true_full_update(
    request: pytest.FixtureRequest,
) -> None:
    async with open_world(request, start_ms=sim_start_ms(minute=50, span_minutes=12), seed=12) as world:
        started = time.time()
        ingest = await world.start("ingest", "ingest")
        await world.start("bot", "bot")
        await world.wait_ingest_healthy(started)
        await world.wait_bot_ready(started)
        first, probe = sorted(await world.followed())[:2]
        await world.spike(first)  # minute 50: the hour owes a FULL_UPDATE at its close
        await world.wait_alert(first, "SPIKE")
        hour = (await world.sim.now_ms()) // HOUR_MS * HOUR_MS

        await world.sim.step_to(hour + 59 * MINUTE_MS + 20_000)
        await world.sim.settle()
        await ingest.kill()
        killed = time.monotonic()
        await world.sim.advance(70)  # the hour closes while ingest is down

        restarted = time.time()
        await ingest.start()
        await world.wait_ingest_healthy(restarted)
        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE")
        world.recovered(
            "ingest SIGKILL at hh:59:20: restart to next alert delivered", time.monotonic() - killed
        )
        await world.wait_alert(first, "FULL_UPDATE")
        await world.final_checks()
