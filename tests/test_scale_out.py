"""Scale-out: several processes per role on one PostgreSQL and one Redis (issue #12, item 4).

Real `volspike ingest|bot|webapp` processes against the simulator and the Telegram look-alike,
as in the fault suite (`tests/fault_harness.py`):

- two ingest shards (`INGEST_SHARD=0/2` and `1/2`), two bots, two webapps on two ports; spikes in
  both shards; one process of each role is killed with SIGKILL mid-run, the bot with sends in
  flight (the others go on serving; then they are started again, as an orchestrator would);
  every alert reaches every elite chat exactly once, counted per (chat, alert) at the
  look-alike (a send the killed bot had open is `unknown`: at most once), and only one bot
  long-polls at a time;
- one shard started twice: the second stands by, and takes over within 30 s when the leader is
  killed, without a second SPIKE for the hour the old leader already alerted;
- one shard started twice and PostgreSQL restarted under both: the leader stops leading when its
  lock's session is gone, and the terms of the two processes (from their logs) never overlap.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import aiohttp
import asyncpg
import orjson
import pytest
from redis.exceptions import RedisError

from core.redis_names import RedisNames
from core.shard import Shard
from tests.fault_checks import alert_messages
from tests.fault_harness import FaultWorld, _epoch, open_world, poll, sim_start_ms
from tests.fault_processes import HOUR_MS, MINUTE_MS
from tests.fault_servers import free_port

# Up to seven real processes per scenario: slow on a busy 2-core machine, never hanging.
pytestmark = pytest.mark.timeout(300)

TAKEOVER_LIMIT = 30.0  # seconds from the leader's death to the standby leading, armed


async def _snapshot(world: FaultWorld, key: str) -> dict[str, object] | None:
    try:
        raw = await world.redis.get(key)
    except (OSError, RedisError):
        return None
    return None if raw is None else orjson.loads(raw)


async def wait_shard_leading(world: FaultWorld, shard: Shard, since: float, timeout: float = 60.0) -> float:
    """Until the shard's leader, started after wall time `since`, reports itself armed and ok."""
    key = RedisNames(world.prefix).ingest_shard_health(shard)

    async def leading() -> bool:
        snap = await _snapshot(world, key)
        if snap is None or not snap.get("ok") or not snap.get("armed") or snap.get("shard") != str(shard):
            return False
        return _epoch(str(snap["ts"])) > since

    return await poll(leading, timeout, f"shard {shard} led, armed and ok", world.state)


async def wait_bots_reading(world: FaultWorld, count: int, since: float) -> None:
    async def reading() -> bool:
        try:
            consumers = await world.redis.xinfo_consumers(f"{world.prefix}alerts", "delivery")
        except (OSError, RedisError):
            return False
        idle_ms = time.time() * 1000 - since * 1000
        return sum(c["idle"] < idle_ms for c in consumers) >= count

    await poll(reading, 60, f"{count} bots reading the alert stream", world.state)


async def spike_rows(world: FaultWorld, symbol: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(world.db_url)
    try:
        return await conn.fetch(
            "SELECT id, hour_ts FROM alerts WHERE symbol = $1 AND alert_type = 'SPIKE'", symbol
        )
    finally:
        await conn.close()


async def webapp_healthy(port: int) -> bool:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        try:
            async with http.get(f"http://127.0.0.1:{port}/health") as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


async def test_two_shards_two_bots_two_webapps_one_of_each_killed_every_alert_once(
    request: pytest.FixtureRequest,
) -> None:
    start = sim_start_ms(minute=10, span_minutes=25)
    async with open_world(request, start_ms=start, seed=11, elite=30) as world:
        shards = [Shard(0, 2), Shard(1, 2)]
        started = time.time()
        ingest = [
            await world.start(f"ingest-{s.index}", "ingest", env={"INGEST_SHARD": str(s)}) for s in shards
        ]
        bots = [await world.start(f"bot-{n}", "bot", env={"TELEGRAM_GLOBAL_RATE": "15"}) for n in (1, 2)]
        ports = [free_port(), free_port()]
        webapps = [
            await world.start(f"webapp-{n}", "webapp", env={"WEBAPP_PORT": str(port)})
            for n, port in enumerate(ports, 1)
        ]
        for shard in shards:
            await wait_shard_leading(world, shard, started)
        await wait_bots_reading(world, 2, started)
        for port in ports:
            await poll(lambda port=port: webapp_healthy(port), 60, f"webapp on {port}", world.state)

        followed = sorted(await world.followed())
        by_shard = {s: [sym for sym in followed if s.owns(sym)] for s in shards}
        assert all(by_shard.values()), f"a shard without symbols: {by_shard}"
        health = [await _snapshot(world, RedisNames(world.prefix).ingest_shard_health(s)) for s in shards]
        assert [h["symbols"] for h in health if h] == [len(by_shard[s]) for s in shards]
        first, other = by_shard[shards[0]][0], by_shard[shards[1]][0]

        await world.spike(first)
        await world.spike(other)
        asset = other.removesuffix("USDT")

        async def some_sent() -> bool:
            return sum(alert_messages(world.telegram, c)[(asset, "SPIKE")] for c in world.chats) >= 5

        await poll(some_sent, 30, "the first deliveries on the wire", world.state)
        # Mid-run, one of each: a bot with sends in flight, a webapp, shard 1's ingest. The
        # others carry on; then the orchestrator starts the dead ones again.
        await bots[0].kill()
        await webapps[0].kill()
        await ingest[1].kill()
        killed = time.time()
        assert await webapp_healthy(ports[1]), "the other webapp stopped answering"
        for proc in (ingest[1], bots[0], webapps[0]):
            await proc.start()
        await wait_shard_leading(world, shards[1], killed)
        await world.wait_bot_ready(killed)
        await poll(lambda: webapp_healthy(ports[0]), 60, "the restarted webapp", world.state)

        hour = (await world.sim.now_ms()) // HOUR_MS * HOUR_MS
        await world.sim.step_to(hour + 31 * MINUTE_MS)  # both spiked hours owe a HALF_UPDATE
        await world.wait_alert(first, "HALF_UPDATE", timeout=60)
        await world.wait_alert(other, "HALF_UPDATE", timeout=60)

        # Every (alert, chat) row final; a row the killed bot had in flight is `unknown` and
        # reached Telegram at most once; nothing else is missing or doubled.
        await world.final_checks(allow_unknown=True)
        for chat in world.chats:
            seen = alert_messages(world.telegram, chat)
            for symbol in (first, other):
                asset = symbol.removesuffix("USDT")
                assert seen[(asset, "SPIKE")] <= 1, (chat, symbol, seen)
                assert seen[(asset, "HALF_UPDATE")] == 1, (chat, symbol, seen)
        assert world.telegram.polling_conflicts == 0, "two bots long-polled at once"


async def test_standby_takes_over_within_30_s_without_a_second_spike_for_the_hour(
    request: pytest.FixtureRequest,
) -> None:
    start = sim_start_ms(minute=12, span_minutes=10)
    async with open_world(request, start_ms=start, seed=12) as world:
        shard = Shard(0, 1)
        names = RedisNames(world.prefix)
        started = time.time()
        leader = await world.start("ingest-a", "ingest")
        await world.start("bot", "bot")
        await wait_shard_leading(world, shard, started)
        await world.wait_bot_ready(started)
        standby = await world.start("ingest-b", "ingest")

        async def standing_by() -> bool:
            snap = await _snapshot(world, names.ingest_standby_health(shard))
            return snap is not None and snap.get("state") == "standby" and _epoch(str(snap["ts"])) > started

        await poll(standing_by, 60, "the second process standing by", world.state)
        spiked, probe = sorted(await world.followed())[:2]
        await world.spike(spiked)
        await world.wait_alert(spiked, "SPIKE")
        assert len(await spike_rows(world, spiked)) == 1

        await leader.kill()
        killed = time.time()
        await world.spike(spiked)  # the hour's volume jumps again while nobody leads
        took = await wait_shard_leading(world, shard, killed, timeout=TAKEOVER_LIMIT + 30)
        world.recovered("ingest leader SIGKILL: standby leading and armed", took)
        assert took < TAKEOVER_LIMIT, f"the standby took {took:.1f} s to take over"
        assert standby.running

        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE")
        rows = await spike_rows(world, spiked)
        assert len(rows) == 1, f"a second SPIKE row for {spiked}: {rows}"
        del world.services["ingest-a"]
        await world.final_checks()
        counts = Counter(
            alert_messages(world.telegram, c)[(spiked.removesuffix("USDT"), "SPIKE")] for c in world.chats
        )
        assert counts == Counter({1: len(world.chats)}), counts


def leading_spans(world: FaultWorld, names: list[str]) -> list[tuple[float, float, str]]:
    """(from, to, process) of every term a process led, from its log ("leader" until "leadership
    ended"; still leading: until now)."""
    spans: list[tuple[float, float, str]] = []
    for name in names:
        began: float | None = None
        for line in world.services[name].log_path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            entry = orjson.loads(line)
            if entry.get("logger") != "db.leadership" or not str(entry.get("role", "")).startswith("ingest"):
                continue
            if entry["msg"] == "leader":
                began = _epoch(entry["ts"])
            elif str(entry["msg"]).startswith("leadership ended") and began is not None:
                spans.append((began, _epoch(entry["ts"]), name))
                began = None
        if began is not None:
            spans.append((began, time.time(), name))
    return sorted(spans)


async def test_postgres_restart_under_leader_and_standby_never_makes_two_leaders(
    request: pytest.FixtureRequest,
) -> None:
    start = sim_start_ms(minute=12, span_minutes=10)
    async with open_world(request, start_ms=start, seed=14) as world:
        shard = Shard(0, 1)
        started = time.time()
        await world.start("ingest-a", "ingest")
        await world.start("bot", "bot")
        await wait_shard_leading(world, shard, started)
        await world.wait_bot_ready(started)
        await world.start("ingest-b", "ingest")
        await asyncio.sleep(6.0)  # the second one has tried the lock at least once: standing by
        first, probe = sorted(await world.followed())[:2]
        await world.spike(first)
        await world.wait_alert(first, "SPIKE")

        await asyncio.to_thread(world.pg.stop, "fast")  # every session ends, the lock with it
        await asyncio.sleep(3.0)
        await asyncio.to_thread(world.pg.start)
        back = time.time()
        await wait_shard_leading(world, shard, back)
        await world.spike(probe)
        await world.wait_alert(probe, "SPIKE", timeout=60)
        await world.final_checks()

        spans = leading_spans(world, ["ingest-a", "ingest-b"])
        assert len(spans) >= 2, f"the leader did not stop across the restart: {spans}\n{world.logs()}"
        for (_, ended, who), (began, _, next_one) in itertools.pairwise(spans):
            assert ended <= began, (
                f"{who} led until {ended}, {next_one} from {began}: two leaders\n{world.logs()}"
            )
