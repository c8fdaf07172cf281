"""Fault suite: `volspike bot` killed with SIGKILL while HALF-UPDATE edits are in flight.

Thirty elite chats get a SPIKE; at hh:30 each chat's HALF_UPDATE edits that SPIKE message
(editMessageText), paced at 10 per second against a Telegram look-alike that answers each call
after 1 s, and the bot is killed while several edits wait for their answer. Afterwards every
delivery row ends `sent` or `unknown`, no chat got a second message for the hour (an edit in
flight at the kill is `unknown`, never followed by a new message, and so is one the dead process
had claimed but not yet sent), no edit was made twice, and the chats the dead process had not
claimed get their edit from the restarted bot.
"""

from __future__ import annotations

import time

import pytest

from tests.fault_checks import alert_messages
from tests.fault_harness import open_world, poll, sim_start_ms
from tests.fault_processes import HOUR_MS, MINUTE_MS

pytestmark = pytest.mark.timeout(300)

LATENCY = 1.0  # seconds the look-alike takes to answer each call
PACED = {"TELEGRAM_GLOBAL_RATE": "10"}


async def test_bot_killed_with_edits_in_flight_never_sends_a_second_message(
    request: pytest.FixtureRequest,
) -> None:
    start = sim_start_ms(minute=12, span_minutes=22)  # a HALF_UPDATE needs the SPIKE by minute 20
    async with open_world(request, start_ms=start, seed=14, elite=30, telegram_latency=LATENCY) as world:
        started = time.time()
        await world.start("ingest", "ingest")
        bot = await world.start("bot", "bot", env=PACED)
        await world.wait_ingest_healthy(started)
        await world.wait_bot_ready(started)
        first, probe = sorted(await world.followed())[:2]
        await world.spike(first)
        asset = first.removesuffix("USDT")
        await world.wait_alert(first, "SPIKE", timeout=60)
        hour = (await world.sim.now_ms()) // HOUR_MS * HOUR_MS

        await world.sim.step_to(hour + 30 * MINUTE_MS + 20_000)  # hh:30: the HALF_UPDATE is due

        async def some_edited() -> bool:
            return len(world.telegram.calls_to("editMessageText")) >= 5

        await poll(some_edited, 60, "the first edits on the wire", world.state)
        await bot.kill()
        killed = time.monotonic()
        edits_at_kill = world.telegram.calls_to("editMessageText")
        assert len(edits_at_kill) < len(world.chats), "the kill came too late: every edit had left"
        assert [c for c in edits_at_kill if c.at > killed - LATENCY], "no edit was waiting for its answer"

        restarted = time.time()
        await bot.start()
        await world.wait_bot_ready(restarted)
        # An edit the dead process had claimed is `unknown` whether or not it had left: never retried.
        halves = await world.wait_settled(first, "HALF_UPDATE", 60)
        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE", timeout=60)
        world.recovered(
            "bot SIGKILL with edits in flight: restart to next alert delivered", time.monotonic() - killed
        )
        await world.final_checks(allow_unknown=True)
        for chat in world.chats:
            messages = alert_messages(world.telegram, chat)
            new_messages = [c for c in world.telegram.calls_to("sendMessage", chat) if asset in c.text]
            assert len(new_messages) == 1, f"chat {chat}: {len(new_messages)} messages for the {asset} hour"
            status = halves[chat]["status"]
            assert status in ("sent", "unknown"), f"chat {chat}: {status}"
            assert messages[(asset, "HALF_UPDATE")] in ((1,) if status == "sent" else (0, 1)), f"chat {chat}"
            edits = world.telegram.calls_to("editMessageText", chat)
            assert all(e.params["message_id"] == str(new_messages[0].message_id) for e in edits)
        after_restart = [c for c in world.telegram.calls_to("editMessageText") if c.at > killed]
        assert after_restart, "the restarted bot edited no chat the dead one had not reached"
