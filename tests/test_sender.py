"""The sender against the Telegram look-alike: limits, 429 storms, blocked chats, retries, crashes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from bot.app import build_bot
from bot.delivery.limiter import RateLimiter
from bot.delivery.recipients import insert_deliveries
from bot.delivery.sender import Sender
from bot.i18n import create_i18n
from tests.bot_harness import compile_catalogs
from tests.delivery_harness import add_alert, add_user, bot_settings, poll_until, statuses
from tests.fakes.telegram_api import FakeTelegram
from volspike.clock import ManualClock
from volspike.settings import Settings

NOW = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@contextlib.asynccontextmanager
async def running_sender(
    settings: Settings, pool: asyncpg.Pool, tg: FakeTelegram, clock: ManualClock, **options: object
) -> AsyncIterator[Sender]:
    compile_catalogs()
    config = bot_settings(settings, tg)
    bot = build_bot(config)
    sender = Sender(
        bot,
        pool,
        create_i18n(),
        RateLimiter(config.telegram_global_rate),
        clock=clock,
        webapp_url=config.webapp_url,
        poll_interval=0.05,
        **options,  # type: ignore[arg-type]
    )
    task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bot.session.close()


async def fan_out(pool: asyncpg.Pool, alert_id: int | None, now: datetime = NOW) -> None:
    assert alert_id is not None
    async with pool.acquire() as conn:
        await insert_deliveries(conn, alert_id, now)


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("volspike_deliveries_total", {"outcome": outcome}) or 0.0


async def test_a_429_storm_pauses_all_sending_and_every_message_goes_out_once(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    users = list(range(201, 207))
    for user in users:
        await add_user(db, user)
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    tg.rate_limit(1, count=2)
    async with running_sender(settings, db, tg, ManualClock(NOW)):
        await poll_until(lambda: _statuses_are(db, {"sent"}), timeout=15)
    calls = tg.calls_to("sendMessage")
    assert len(calls) == len(users) + 2  # two answered 429, then each user exactly once more
    limited = calls[:2]
    for hit in limited:
        inside = [c for c in calls if hit.at + 0.03 < c.at < hit.at + 0.98]
        assert inside == [], "a message went out inside the retry_after window"
    assert sorted(c.chat_id for c in calls[2:]) == users
    attempts = await db.fetch("SELECT attempts FROM deliveries")
    assert {row["attempts"] for row in attempts} == {1}  # a 429 does not use up an attempt


async def _statuses_are(db: asyncpg.Pool, wanted: set[str]) -> bool:
    found = set((await statuses(db)).values())
    return found == wanted


async def test_blocked_user_and_missing_chat_are_marked_counted_and_not_retried(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    await add_user(db, 301)
    await add_user(db, 302)
    await add_user(db, 303)
    await db.execute("INSERT INTO chats (id, kind, tier, connected_by) VALUES (-303, 'group', 'elite', 9)")
    tg.blocked_chats.update({301, -303})
    tg.missing_chats.add(302)
    before = counted("blocked")
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    async with running_sender(settings, db, tg, ManualClock(NOW)):
        await poll_until(lambda: _statuses_are(db, {"blocked", "sent"}))
    assert await statuses(db) == {301: "blocked", 302: "blocked", 303: "sent", -303: "blocked"}
    assert counted("blocked") - before == 3
    blocked = await db.fetch("SELECT id FROM users WHERE blocked ORDER BY id")
    assert [row["id"] for row in blocked] == [301, 302]
    assert await db.fetchval("SELECT active FROM chats WHERE id = -303") is False
    # The next alert is not even addressed to them.
    second = await add_alert(db, NOW, symbol="ETHUSDT", asset="ETH")
    await fan_out(db, second.id)
    rows = await db.fetch("SELECT chat_id FROM deliveries WHERE alert_id = $1", second.id)
    assert [row["chat_id"] for row in rows] == [303]
    assert len(tg.calls_to("sendMessage", 301)) == 1


async def test_server_errors_are_retried_with_backoff_then_marked_failed(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    await add_user(db, 401)  # always 502
    await add_user(db, 402)  # one 500, then fine
    tg.fail("sendMessage", 502, "Bad Gateway", chat_id=401, count=100)
    tg.fail("sendMessage", 500, "Internal Server Error", chat_id=402, count=1)
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    async with running_sender(settings, db, tg, clock, max_attempts=3) as sender:
        for attempt in (1, 2):
            await tg.wait_for_call("sendMessage", 401, count=attempt)
            await poll_until(lambda: _row_is(db, 401, "pending"))
            due = await db.fetchval("SELECT due_at FROM deliveries WHERE chat_id = 401")
            assert due == clock.now() + timedelta(seconds=2**attempt)
            assert len(tg.calls_to("sendMessage", 401)) == attempt  # nothing before the backoff
            clock.advance(timedelta(seconds=2**attempt))
            sender.wake()
        await poll_until(lambda: _row_is(db, 401, "failed"))
        await poll_until(lambda: _row_is(db, 402, "sent"))
    row = await db.fetchrow("SELECT attempts, error FROM deliveries WHERE chat_id = 401")
    assert row["attempts"] == 3 and row["error"] == "Bad Gateway"
    assert len(tg.calls_to("sendMessage", 401)) == 3
    assert len(tg.calls_to("sendMessage", 402)) == 2


async def _row_is(db: asyncpg.Pool, chat_id: int, status: str) -> bool:
    return (await statuses(db)).get(chat_id) == status


async def test_a_row_in_flight_during_a_crash_is_reported_lost_and_never_resent(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    await add_user(db, 501)
    first = await add_alert(db, NOW)
    second = await add_alert(db, NOW, symbol="ETHUSDT", asset="ETH")
    await fan_out(db, first.id)
    await fan_out(db, second.id)
    tg.latency = 2.0  # Telegram is slow: the first call is still open when the process dies
    lost_before = counted("lost")
    async with running_sender(settings, db, tg, clock):
        await tg.wait_for_call("sendMessage", 501)
        # The second row waits for the 1-message-per-second chat limit; the first is in flight.
    rows = {
        row["alert_id"]: row["status"] for row in await db.fetch("SELECT alert_id, status FROM deliveries")
    }
    assert rows == {first.id: "sending", second.id: "pending"}  # the waiting one was given back

    tg.latency = 0.0
    async with running_sender(settings, db, tg, clock):
        await poll_until(lambda: _alert_row_is(db, second.id, "sent"))
    rows = {
        row["alert_id"]: row["status"] for row in await db.fetch("SELECT alert_id, status FROM deliveries")
    }
    assert rows == {first.id: "lost", second.id: "sent"}
    texts = [c.text for c in tg.calls_to("sendMessage", 501)]
    assert len(texts) == 2 and "BTC" in texts[0] and "ETH" in texts[1]  # BTC was never sent again
    assert counted("lost") - lost_before == 1


async def _alert_row_is(db: asyncpg.Pool, alert_id: int | None, status: str) -> bool:
    return await db.fetchval("SELECT status FROM deliveries WHERE alert_id = $1", alert_id) == status


async def test_elite_recipients_go_first(settings: Settings, db: asyncpg.Pool, tg: FakeTelegram):
    free, elite = [601, 602, 603], [611, 612, 613]
    for user in free:
        await add_user(db, user, tier="free")
    for user in elite:
        await add_user(db, user, tier="elite")
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    # Fifteen minutes later everyone is due at once.
    async with running_sender(settings, db, tg, ManualClock(NOW + timedelta(minutes=15))):
        await tg.wait_for(lambda calls: len(calls) >= 6)
    assert [c.chat_id for c in tg.calls_to("sendMessage")][:3] == elite


async def test_pausing_after_selection_skips_the_delayed_delivery(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    await add_user(db, 701, tier="pro")
    await add_user(db, 702, tier="pro")
    await add_user(db, 703, tier="pro")
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    await db.execute("UPDATE user_settings SET paused = true WHERE user_id = 701")
    await db.execute("INSERT INTO mutes VALUES (702, 'BTCUSDT', $1)", NOW + timedelta(hours=24))
    async with running_sender(settings, db, tg, clock) as sender:
        clock.advance(timedelta(minutes=5))
        sender.wake()
        await poll_until(lambda: _row_is(db, 703, "sent"))
        await poll_until(lambda: _statuses_are(db, {"skipped", "sent"}))
    assert await statuses(db) == {701: "skipped", 702: "skipped", 703: "sent"}
    assert [c.chat_id for c in tg.calls_to("sendMessage")] == [703]


# -- the limiter on its own (real time, short intervals) ----------------------------------


async def _timed(limiter: RateLimiter, chat_id: int, **kwargs: bool) -> float:
    await limiter.acquire(chat_id, **kwargs)
    return asyncio.get_running_loop().time()


async def test_limiter_spaces_messages_per_chat_private_and_group():
    limiter = RateLimiter(1000, private_interval=0.1, group_interval=0.3)
    private = [await _timed(limiter, 1) for _ in range(3)]
    group = [await _timed(limiter, -1, group=True) for _ in range(2)]
    assert all(b - a >= 0.095 for a, b in itertools.pairwise(private))
    assert group[1] - group[0] >= 0.295


async def test_limiter_holds_the_global_rate_across_chats():
    limiter = RateLimiter(50)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(limiter.acquire(chat) for chat in range(20)))
    # 20 slots 20 ms apart, minus the small catch-up allowance at the start.
    assert loop.time() - started >= (20 - 1) / 50 - 0.06


async def test_low_priority_callers_wait_while_alerts_wait():
    limiter = RateLimiter(20)
    finished: list[str] = []

    async def take(name: str, chat: int, low: bool) -> None:
        await limiter.acquire(chat, low_priority=low)
        finished.append(name)

    async with asyncio.TaskGroup() as tasks:
        for index in range(4):
            tasks.create_task(take(f"alert{index}", index, False))
        await asyncio.sleep(0)  # the alerts are now waiting for their slots
        tasks.create_task(take("broadcast", 99, True))
    assert finished == ["alert0", "alert1", "alert2", "alert3", "broadcast"]


async def test_a_pause_holds_every_caller_until_it_ends():
    limiter = RateLimiter(1000)
    loop = asyncio.get_running_loop()
    limiter.pause(0.3)
    started = loop.time()
    await asyncio.gather(limiter.acquire(1), limiter.acquire(2, low_priority=True))
    assert loop.time() - started >= 0.29
