"""Fan-out with PostgreSQL as the source of truth: alerts whose stream entries were lost are
still delivered, old ones are dead-lettered, a poison alert does not block the next, killed
PostgreSQL backends and Redis connections are survived, dead consumers leave the group."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.app import build_bot
from bot.delivery import run_delivery
from bot.i18n import create_i18n
from core.clock import ManualClock
from core.redis_names import RedisNames
from core.settings import Settings
from db.pool import create_pool
from tests.bot_harness import compile_catalogs
from tests.delivery_harness import (
    FAST,
    add_alert,
    add_user,
    bot_settings,
    poll_until,
    publish,
    running_delivery,
    statuses,
)
from tests.fakes.telegram_api import FakeTelegram

USERS = (201, 202, 203)
START = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)
SERVICE_APP = "volspike_fanout_under_test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """These alerts all fire at START, so four or more would make a burst digest (its own tests
    are test_burst_digest.py): here every alert is its own message."""
    return settings.model_copy(update={"digest_min_symbols": 0})


async def _elite_users(db: asyncpg.Pool) -> None:
    for user in USERS:
        await add_user(db, user)


async def _sent_once_each(db: asyncpg.Pool, tg: FakeTelegram, alerts: int) -> bool:
    rows = await db.fetch("SELECT status, count(*) AS n FROM deliveries GROUP BY status")
    by_status = {row["status"]: row["n"] for row in rows}
    return by_status == {"sent": alerts * len(USERS)} and all(
        len(tg.calls_to("sendMessage", user)) == alerts for user in USERS
    )


def _assert_each_user_got_each_alert_once(tg: FakeTelegram, symbols: list[str]) -> None:
    for user in USERS:
        texts = [c.text for c in tg.calls_to("sendMessage", user)]
        assert sorted(t.split(" hourly")[0].removeprefix("<b>") for t in texts) == sorted(symbols)


async def _fanned_out(db: asyncpg.Pool) -> dict[int, datetime | None]:
    rows = await db.fetch("SELECT id, fanned_out_at FROM alerts")
    return {row["id"]: row["fanned_out_at"] for row in rows}


async def test_alerts_never_added_to_the_stream_are_fanned_out_from_postgres_at_start(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    # Redis lost them (restart without persistence, failover): the rows exist, the stream does not.
    clock = ManualClock(START)
    await _elite_users(db)
    for symbol in ("BTC", "ETH"):
        await add_alert(db, START, symbol=f"{symbol}USDT", asset=symbol)
    assert not await redis.exists(names.alerts_stream)
    async with running_delivery(settings, db, redis, tg, clock):
        await poll_until(lambda: _sent_once_each(db, tg, 2))
    _assert_each_user_got_each_alert_once(tg, ["BTC", "ETH"])
    assert all(when == START for when in (await _fanned_out(db)).values())


async def test_a_trimmed_stream_and_a_vanished_group_lose_no_alert(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    await _elite_users(db)
    async with running_delivery(settings, db, redis, tg, clock):
        first = await add_alert(db, START, symbol="BTCUSDT", asset="BTC")
        await publish(redis, names, first)
        await poll_until(lambda: _sent_once_each(db, tg, 1))

        # Entries trimmed away before the worker read them.
        second = await add_alert(db, START, symbol="ETHUSDT", asset="ETH")
        await publish(redis, names, second)
        await redis.xtrim(names.alerts_stream, maxlen=0)
        await poll_until(lambda: _sent_once_each(db, tg, 2))

        # The stream and its group gone (an empty Redis after a restart), alerts meanwhile.
        await redis.delete(names.alerts_stream)
        third = await add_alert(db, START, symbol="SOLUSDT", asset="SOL")
        await poll_until(lambda: _sent_once_each(db, tg, 3))
        fourth = await add_alert(db, START, symbol="XRPUSDT", asset="XRP")
        await publish(redis, names, fourth)  # the stream wakes the worker again
        await poll_until(lambda: _sent_once_each(db, tg, 4))
        assert third.id is not None
    _assert_each_user_got_each_alert_once(tg, ["BTC", "ETH", "SOL", "XRP"])
    assert None not in (await _fanned_out(db)).values()


async def test_an_alert_older_than_the_age_limit_is_dead_lettered_and_not_sent(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    # After a long bot outage: the old alert is not sent as if new; the fresh one is.
    clock = ManualClock(START)
    await _elite_users(db)
    stale = await add_alert(db, START - timedelta(minutes=31), symbol="ETHUSDT", asset="ETH")
    fresh = await add_alert(db, START - timedelta(minutes=29))
    async with running_delivery(settings, db, redis, tg, clock):
        await publish(redis, names, stale)
        await poll_until(lambda: _sent_once_each(db, tg, 1))
    _assert_each_user_got_each_alert_once(tg, ["BTC"])
    row = await db.fetchrow("SELECT * FROM alerts WHERE id = $1", stale.id)
    assert row["fanned_out_at"] is None and row["fanout_failed_at"] == START
    assert row["fanout_error"].startswith("expired")
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE alert_id = $1", stale.id) == 0
    assert (await _fanned_out(db))[fresh.id] == START  # type: ignore[index]


@contextlib.asynccontextmanager
async def poisoned(db: asyncpg.Pool, alert_id: int) -> AsyncIterator[None]:
    """Every delivery row written for `alert_id` is refused by PostgreSQL (a trigger), as a
    statement that always fails for one alert would be."""
    await db.execute(
        f"""
        CREATE FUNCTION poison_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.alert_id = {int(alert_id)} THEN
                RAISE EXCEPTION 'poisoned alert %', NEW.alert_id;
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER poison BEFORE INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION poison_delivery();
        """
    )
    try:
        yield
    finally:
        await db.execute("DROP TRIGGER poison ON deliveries; DROP FUNCTION poison_delivery()")


async def test_a_poison_alert_is_dead_lettered_and_the_alerts_after_it_still_go(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    await _elite_users(db)
    poison = await add_alert(db, START, symbol="ETHUSDT", asset="ETH")
    assert poison.id is not None
    async with poisoned(db, poison.id):
        # Its stream entry comes first, and it is read first again at every start.
        await redis.xgroup_create(names.alerts_stream, names.delivery_group, id="$", mkstream=True)
        await publish(redis, names, poison)
        await redis.xreadgroup(names.delivery_group, "test-consumer", {names.alerts_stream: ">"})
        good = await add_alert(db, START)
        async with running_delivery(settings, db, redis, tg, clock):
            await publish(redis, names, good)
            await poll_until(lambda: _sent_once_each(db, tg, 1))

            async def dead() -> bool:
                return bool(
                    await db.fetchval(
                        "SELECT fanout_failed_at IS NOT NULL FROM alerts WHERE id = $1", poison.id
                    )
                )

            await poll_until(dead)
            later = await add_alert(db, START, symbol="SOLUSDT", asset="SOL")
            await publish(redis, names, later)
            await poll_until(lambda: _sent_once_each(db, tg, 2))
            pending = await redis.xpending(names.alerts_stream, names.delivery_group)
            assert pending["pending"] == 0
    row = await db.fetchrow("SELECT * FROM alerts WHERE id = $1", poison.id)
    assert row["fanout_attempts"] == 5 and row["fanned_out_at"] is None
    assert "poisoned alert" in row["fanout_error"]
    _assert_each_user_got_each_alert_once(tg, ["BTC", "SOL"])


async def _kill_service_backends(db: asyncpg.Pool) -> int:
    killed: int = await db.fetchval(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = $1) k",
        SERVICE_APP,
    )
    return killed


async def _kill_service_redis(redis: Redis, names: RedisNames) -> int:
    killed = 0
    for client in await redis.client_list():
        if client.get("name") == f"{names.prefix}delivery":
            killed += await redis.execute_command("CLIENT", "KILL", "ID", client["id"])
    return killed


async def test_killed_postgres_backends_and_redis_connections_are_survived_without_loss_or_duplicates(
    settings: Settings,
    database_url: str,
    db: asyncpg.Pool,
    redis: Redis,
    names: RedisNames,
    tg: FakeTelegram,
):
    clock = ManualClock(START)
    await _elite_users(db)
    service_pool = await create_pool(f"{database_url}?application_name={SERVICE_APP}", min_size=2)
    symbols = ["BTC", "ETH", "SOL", "XRP", "BNB", "ADA"]
    try:
        async with running_delivery(settings, service_pool, redis, tg, clock):
            for n, symbol in enumerate(symbols, 1):
                if n % 2:
                    assert await _kill_service_backends(db) >= 1
                else:
                    assert await _kill_service_redis(redis, names) >= 1
                alert = await add_alert(db, START, symbol=f"{symbol}USDT", asset=symbol)
                with contextlib.suppress(Exception):  # the stream is only a wake-up
                    await publish(redis, names, alert)
                await poll_until(lambda n=n: _sent_once_each(db, tg, n), timeout=20)
            # Both kinds at once, then an alert while the worker is reconnecting.
            await _kill_service_backends(db)
            await _kill_service_redis(redis, names)
            last = await add_alert(db, START, symbol="DOGEUSDT", asset="DOGE")
            await publish(redis, names, last)
            await poll_until(lambda: _sent_once_each(db, tg, len(symbols) + 1), timeout=20)
    finally:
        await service_pool.close()
    _assert_each_user_got_each_alert_once(tg, [*symbols, "DOGE"])
    assert set((await statuses(db)).values()) == {"sent"}


async def test_idle_consumers_of_dead_processes_are_removed_from_the_group(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    await _elite_users(db)
    alert = await add_alert(db, START)
    stream, group = names.alerts_stream, names.delivery_group
    await redis.xgroup_create(stream, group, id="$", mkstream=True)
    await redis.xreadgroup(group, "host-101", {stream: ">"})  # a dead process, nothing pending
    await publish(redis, names, alert)
    await redis.xreadgroup(group, "host-102", {stream: ">"})  # died holding an entry
    options = dataclasses.replace(FAST, consumer_idle=0.05)
    async with running_delivery(settings, db, redis, tg, clock, consumer="host-103", options=options):

        async def only_the_living() -> bool:
            return [c["name"] for c in await redis.xinfo_consumers(stream, group)] == [b"host-103"]

        await poll_until(only_the_living)
        await poll_until(lambda: _sent_once_each(db, tg, 1))
        assert (await redis.xpending(stream, group))["pending"] == 0


async def test_with_redis_unreachable_alerts_are_still_fanned_out_and_sent(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(START)
    await _elite_users(db)
    compile_catalogs()
    config = bot_settings(settings, tg, redis_url="redis://127.0.0.1:9/0")
    bot = build_bot(config)
    dead_redis = Redis.from_url(config.redis_url, socket_connect_timeout=1)
    task = asyncio.create_task(
        run_delivery(bot, config, db, dead_redis, create_i18n(), clock=clock, consumer_name="c", options=FAST)
    )
    try:
        await add_alert(db, START)
        await poll_until(lambda: _sent_once_each(db, tg, 1))
        await add_alert(db, START, symbol="ETHUSDT", asset="ETH")  # found by the periodic sweep
        await poll_until(lambda: _sent_once_each(db, tg, 2))
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.session.close()
        await dead_redis.aclose()
    _assert_each_user_got_each_alert_once(tg, ["BTC", "ETH"])
