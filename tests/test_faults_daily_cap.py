"""Fault suite: `volspike bot` killed with SIGKILL while daily-cap summaries are in flight.

Ten elite chats with a daily cap of 1: the first SPIKE is an alert in every chat; the second is
held back, so each chat's first summary goes out, paced at 10 per second against a Telegram
look-alike that answers each call after 1 s, and the bot is killed while several summaries wait
for their answer. Afterwards no summary was sent twice (one in flight at the kill is `unknown`,
never repeated; a row the dead process had claimed is `unknown` whether its summary left or
not), the chats the dead process had not claimed get theirs from the restarted bot,
and a third SPIKE edits each chat's summary (a new summary only where the second's is `unknown`:
its message id is not on record). No held-back SPIKE is ever an alert message.
"""

from __future__ import annotations

import time

import asyncpg
import pytest

from tests.fault_checks import alert_messages
from tests.fault_harness import FaultWorld, open_world, poll, sim_start_ms

pytestmark = pytest.mark.timeout(300)

LATENCY = 1.0  # seconds the look-alike takes to answer each call
PACED = {"TELEGRAM_GLOBAL_RATE": "10"}


def _summaries(world: FaultWorld, chat: int, asset: str, method: str = "sendMessage") -> list[object]:
    return [
        c
        for c in world.telegram.calls_to(method, chat)
        if c.text.startswith("Daily cap of 1 alerts reached.") and f" {asset} " in c.text
    ]


async def test_bot_killed_with_summaries_in_flight_repeats_none_and_loses_none(
    request: pytest.FixtureRequest,
) -> None:
    start = sim_start_ms(minute=5, span_minutes=20)
    async with open_world(request, start_ms=start, seed=15, elite=10, telegram_latency=LATENCY) as world:
        conn = await asyncpg.connect(world.db_url)
        try:
            await conn.executemany(
                "INSERT INTO user_settings (user_id, daily_cap) VALUES ($1, 1)", [(c,) for c in world.chats]
            )
        finally:
            await conn.close()
        started = time.time()
        await world.start("ingest", "ingest")
        bot = await world.start("bot", "bot", env=PACED)
        await world.wait_ingest_healthy(started)
        await world.wait_bot_ready(started)
        first, second, probe = sorted(await world.followed())[:3]
        await world.spike(first)
        await world.wait_alert(first, "SPIKE", timeout=60)
        await world.wait_settled(first, "SPIKE", 30)

        await world.spike(second)
        asset = second.removesuffix("USDT")

        async def some_summaries() -> bool:
            return sum(len(_summaries(world, c, asset)) for c in world.chats) >= 3

        await poll(some_summaries, 60, "the first summaries on the wire", world.state)
        await bot.kill()
        killed = time.monotonic()
        at_kill = [s for c in world.chats for s in _summaries(world, c, asset)]
        assert len(at_kill) < len(world.chats), "the kill came too late: every summary had left"
        assert [s for s in at_kill if s.at > killed - LATENCY], "no summary was waiting for its answer"  # type: ignore[attr-defined]

        restarted = time.time()
        await bot.start()
        await world.wait_bot_ready(restarted)
        held = await world.wait_settled(second, "SPIKE", 60)
        await world.spike(probe)
        probes = await world.wait_settled(probe, "SPIKE", 60)
        world.recovered(
            "bot SIGKILL with daily-cap summaries in flight: restart to next summary",
            time.monotonic() - killed,
        )

        probe_asset = probe.removesuffix("USDT")
        for chat in world.chats:
            row, later = held[chat], probes[chat]
            # A row claimed by the dead process is `unknown` whether or not its summary had left.
            sent_summaries = len(_summaries(world, chat, asset))
            wanted = (1,) if row["status"] == "sent" else (0, 1)
            assert sent_summaries in wanted, f"chat {chat}: {sent_summaries} summaries, row {row['status']}"
            messages = alert_messages(world.telegram, chat)
            assert messages[(first.removesuffix("USDT"), "SPIKE")] == 1
            assert messages[(asset, "SPIKE")] == 0 and messages[(probe_asset, "SPIKE")] == 0
            assert (later["status"], later["capped"]) == ("sent", True)
            if row["status"] == "sent":
                assert row["capped"]
                [edit] = _summaries(world, chat, probe_asset, "editMessageText")
                assert edit.params["message_id"] == str(row["message_id"])  # type: ignore[attr-defined]
                assert later["message_id"] == row["message_id"]
            else:
                assert row["status"] == "unknown", f"chat {chat}: {row['status']}"
                [new] = [s for s in _summaries(world, chat, probe_asset) if f" {asset} " not in s.text]  # type: ignore[attr-defined]
                assert later["message_id"] == new.message_id  # type: ignore[attr-defined]
        assert any(r["status"] == "unknown" for r in held.values()), "no summary was in flight at the kill"
