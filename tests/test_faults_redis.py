"""Fault suite: the suite's own Redis flushed and restarted (no persistence) while alerts flow.

An alert is published to the stream while the bot cannot read it (the bot process is stopped
with SIGSTOP, as a stalled process is), then Redis loses everything. PostgreSQL is the source of
truth of the fan-out, so the alert must still reach every chat once; ingest and the bot
reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import signal
import time

import asyncpg
import pytest

from tests.fault_harness import open_world, poll, sim_start_ms

# Several real processes start per scenario: slow on a busy 2-core machine, never hanging.
pytestmark = pytest.mark.timeout(240)


async def test_redis_flushed_and_restarted_loses_no_alert(request: pytest.FixtureRequest) -> None:
    async with open_world(request, start_ms=sim_start_ms(minute=10, span_minutes=5), seed=15) as world:
        started = time.time()
        await world.start("ingest", "ingest")
        bot = await world.start("bot", "bot")
        await world.wait_ingest_healthy(started)
        await world.wait_bot_ready(started)
        first, flushed, probe = sorted(await world.followed())[:3]
        await world.spike(first)
        await world.wait_alert(first, "SPIKE")

        await bot.signal(signal.SIGSTOP)
        await world.spike(flushed)

        async def published() -> bool:
            conn = await asyncpg.connect(world.db_url)
            try:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM alerts WHERE symbol = $1 AND published_at IS NOT NULL", flushed
                    )
                )
            finally:
                await conn.close()

        await poll(published, 30, "the alert in the Redis stream", world.state)
        await world.redis.flushall()
        await asyncio.to_thread(world.redis_server.stop)
        outage = time.monotonic()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(world.redis_server.start)
        back = time.time()
        await bot.signal(signal.SIGCONT)

        await world.wait_ingest_healthy(back)
        await world.wait_bot_ready(back)
        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE", timeout=60)
        world.recovered(
            "Redis flush + restart: outage start to next alert delivered", time.monotonic() - outage
        )
        await world.wait_alert(flushed, "SPIKE", timeout=30)
        await world.final_checks()
