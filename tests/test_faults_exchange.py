"""Fault suite: the exchange misbehaves across an hour close.

Every websocket is dropped at hh:59:30 and new ones refused for a while, REST answers 429 with
`Retry-After` and then 418, and malformed frames arrive on every connection. Ingest must come
back by itself, obey `Retry-After`, fill every missing minute, send the spiked hour's
FULL_UPDATE with the closed hour's exact total, and keep alerting.
"""

from __future__ import annotations

import time

import pytest

from tests.fault_harness import open_world, sim_start_ms
from tests.fault_processes import HOUR_MS, MINUTE_MS

# Several real processes start per scenario: slow on a busy 2-core machine, never hanging.
pytestmark = pytest.mark.timeout(240)


async def test_exchange_drops_refuses_and_garbles_across_an_hour_close_loses_nothing(
    request: pytest.FixtureRequest,
) -> None:
    async with open_world(request, start_ms=sim_start_ms(minute=50, span_minutes=14), seed=16) as world:
        started = time.time()
        ingest = await world.start("run", "run", "--no-migrate")
        await world.wait_ingest_healthy(started)
        await world.wait_bot_ready(started)
        first, probe = sorted(await world.followed())[:2]
        await world.spike(first)
        await world.wait_alert(first, "SPIKE")
        hour = (await world.sim.now_ms()) // HOUR_MS * HOUR_MS

        await world.sim.step_to(hour + 59 * MINUTE_MS + 30_000)
        await world.sim.settle()
        dropped_at = time.time()
        fault = time.monotonic()
        assert await world.sim.drop(refuse_seconds=3.0) >= 1
        await world.sim.rest_errors(3, status=429, retry_after=1)
        await world.sim.step_to(hour + HOUR_MS + 60_000)  # the hour closes while nobody is connected
        await world.wait_ingest_healthy(dropped_at + 3.0)

        await world.sim.settle()
        dropped_at = time.time()
        await world.sim.rest_errors(2, status=418, retry_after=1)
        assert await world.sim.drop(refuse_seconds=1.0) >= 1
        await world.sim.step_to(hour + HOUR_MS + 3 * MINUTE_MS)
        await world.wait_ingest_healthy(dropped_at + 1.0)
        assert await world.sim.malformed(12) >= 1

        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE")
        world.recovered(
            "exchange drop/429/418/garbage across a close: to next alert", time.monotonic() - fault
        )
        await world.wait_alert(first, "FULL_UPDATE")
        assert ingest.running and ingest.starts == 1, "the process recovered by itself"
        log = await world.sim.requests()
        refused = [i for i, e in enumerate(log) if e["status"] in (429, 418)]
        assert {log[i]["status"] for i in refused} == {429, 418}, "both answers reached ingest's calls"
        for i in refused:
            # Retry-After (1 s) is obeyed by every caller: no request is answered between the
            # refusal and its end, except those already on the way when it was answered.
            early = [e for e in log if log[i]["time"] + 0.2 < e["time"] < log[i]["time"] + 0.95]
            assert not early, f"requests during the Retry-After of a {log[i]['status']}: {early}"
        await world.final_checks()
