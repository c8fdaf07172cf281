"""Fault suite: `volspike bot` killed with SIGKILL while an alert's deliveries are in flight.

Thirty elite chats, sends paced at 10 per second and a Telegram look-alike that answers each
call after 1 s: the kill lands while several sends wait for their answer. Afterwards every
delivery row ends `sent` or `unknown` (a send that Telegram may have received is never
repeated), no chat gets the alert twice, and the rows the dead process had not reached yet are
delivered by the restarted bot.
"""

from __future__ import annotations

import time

import pytest

from tests.fault_checks import alert_messages
from tests.fault_harness import open_world, poll, sim_start_ms

# Several real processes start per scenario: slow on a busy 2-core machine, never hanging.
pytestmark = pytest.mark.timeout(240)

LATENCY = 1.0  # seconds the look-alike takes to answer each call
PACED = {"TELEGRAM_GLOBAL_RATE": "10"}


async def test_bot_killed_with_sends_in_flight_sends_nothing_twice_and_delivers_the_rest(
    request: pytest.FixtureRequest,
) -> None:
    start = sim_start_ms(minute=10, span_minutes=5)
    async with open_world(request, start_ms=start, seed=13, elite=30, telegram_latency=LATENCY) as world:
        started = time.time()
        await world.start("ingest", "ingest")
        bot = await world.start("bot", "bot", env=PACED)
        await world.wait_ingest_healthy(started)
        await world.wait_bot_ready(started)
        first, probe = sorted(await world.followed())[:2]
        await world.spike(first)
        asset = first.removesuffix("USDT")

        async def some_sent() -> bool:
            return sum(alert_messages(world.telegram, c)[(asset, "SPIKE")] for c in world.chats) >= 5

        await poll(some_sent, 30, "the first deliveries on the wire", world.state)
        await bot.kill()
        killed = time.monotonic()
        received_at_kill = sum(alert_messages(world.telegram, c)[(asset, "SPIKE")] for c in world.chats)
        assert received_at_kill < len(world.chats), "the kill came too late: every send had left"
        in_flight = [c for c in world.telegram.calls_to("sendMessage") if c.at > killed - LATENCY]
        assert in_flight, "the kill came while no send was waiting for Telegram's answer"

        restarted = time.time()
        await bot.start()
        await world.wait_bot_ready(restarted)
        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE", timeout=60)
        world.recovered(
            "bot SIGKILL with sends in flight: restart to next alert delivered", time.monotonic() - killed
        )
        await world.final_checks(allow_unknown=True)
