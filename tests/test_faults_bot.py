"""Fault suite: `volspike bot` killed with SIGKILL while an alert's deliveries are in flight.

Thirty elite chats and a Telegram look-alike that answers each call after 0.3 s: the kill lands
while sends are under way. Afterwards every delivery row ends `sent` or `unknown` (a send that
Telegram may have received is never repeated), no chat gets the alert twice, and the rows
the dead process had not reached yet are delivered by the restarted bot.
"""

from __future__ import annotations

import time

import pytest

from tests.fault_checks import alert_messages
from tests.fault_harness import open_world, poll, sim_start_ms

# Several real processes start per scenario: slow on a busy 2-core machine, never hanging.
pytestmark = pytest.mark.timeout(240)


@pytest.mark.xfail(
    strict=True,
    reason="sender #9.3: a row a crashed bot left `sending` is marked `lost`; the issue's state is `unknown`",
)
async def test_bot_killed_with_sends_in_flight_sends_nothing_twice_and_delivers_the_rest(
    request: pytest.FixtureRequest,
) -> None:
    start = sim_start_ms(minute=10, span_minutes=5)
    async with open_world(request, start_ms=start, seed=13, elite=30, telegram_latency=0.3) as world:
        started = time.time()
        await world.start("ingest", "ingest")
        bot = await world.start("bot", "bot")
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

        restarted = time.time()
        await bot.start()
        await world.wait_bot_ready(restarted)
        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE", timeout=60)
        world.recovered(
            "bot SIGKILL with sends in flight: restart to next alert delivered", time.monotonic() - killed
        )
        await world.final_checks(allow_unknown=True)
