"""Fault suite: `volspike bot` killed with SIGKILL in the middle of a burst digest.

Eight elite chats; seven symbols spike within seconds, so each chat gets three SPIKE messages and
then ONE digest (DIGEST_MIN_SYMBOLS=4), sent by the fourth SPIKE and edited by each later one,
against a Telegram look-alike that answers each call after 1 s, paced at 10 calls per second. The
bot is killed while digests are on the wire. Afterwards every row ends `sent` or `unknown`, no
chat got a second digest, no symbol reached a chat twice as a message of its own, every digest edit
went into the chat's one digest, every `sent` row of a digest is listed in it as the chat shows it
(fault_checks), and the rows the dead process had not reached are delivered by the restarted bot.
"""

from __future__ import annotations

import time

import pytest

from tests.fault_checks import alert_messages
from tests.fault_harness import open_world, poll, sim_start_ms
from tests.fault_processes import MINUTE_MS

pytestmark = pytest.mark.timeout(300)

LATENCY = 1.0  # seconds the look-alike takes to answer each call
ENV = {"TELEGRAM_GLOBAL_RATE": "10", "DIGEST_MIN_SYMBOLS": "4"}
DIGEST = "spiked within a minute"


async def test_bot_killed_mid_burst_starts_no_second_digest_and_loses_nothing(
    request: pytest.FixtureRequest,
) -> None:
    start = sim_start_ms(minute=10, span_minutes=5)
    async with open_world(
        request, start_ms=start, seed=15, elite=8, telegram_latency=LATENCY, symbols=10
    ) as world:
        started = time.time()
        await world.start("ingest", "ingest")
        bot = await world.start("bot", "bot", env=ENV)
        await world.wait_ingest_healthy(started)
        await world.wait_bot_ready(started)
        *burst, probe = sorted(s for s in await world.followed() if s.isascii())[:8]
        for symbol in burst:
            await world.spike(symbol)

        async def digests_on_the_wire() -> bool:
            return len(world.telegram.calls_to("editMessageText")) >= 3

        await poll(digests_on_the_wire, 90, "the first digest edits on the wire", world.state)
        await bot.kill()
        killed = time.monotonic()
        at_kill = [
            c
            for c in [*world.telegram.calls_to("sendMessage"), *world.telegram.calls_to("editMessageText")]
            if DIGEST in c.text
        ]
        assert len(world.telegram.calls_to("editMessageText")) < 3 * len(world.chats), "the burst was over"
        assert [c for c in at_kill if c.at > killed - LATENCY], "no digest call was waiting for its answer"

        restarted = time.time()
        await bot.start()
        await world.wait_bot_ready(restarted)
        # two minutes on: the probe is a burst of its own (one SPIKE), a message of its own
        await world.sim.step_to(await world.sim.now_ms() + 2 * MINUTE_MS)
        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE", timeout=60)
        world.recovered("bot SIGKILL mid-burst: restart to next alert delivered", time.monotonic() - killed)
        await world.final_checks(allow_unknown=True)
        assets = {s.removesuffix("USDT") for s in burst}
        for chat in world.chats:
            sent = world.telegram.calls_to("sendMessage", chat)
            digests = [c for c in sent if DIGEST in c.text]
            assert len(digests) <= 1, f"chat {chat}: {len(digests)} digests"
            singles = alert_messages(world.telegram, chat)
            assert all(singles[(asset, "SPIKE")] <= 1 for asset in assets), f"chat {chat}: {singles}"
            if digests:
                edits = world.telegram.calls_to("editMessageText", chat)
                assert all(e.params["message_id"] == str(digests[0].message_id) for e in edits)
