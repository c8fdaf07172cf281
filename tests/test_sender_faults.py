"""Telegram's fault answers through aiogram's real HTTP session against the look-alike: each
ends in exact row states and counters, and no message the look-alike delivered is sent twice.

Known not sent (connection refused, 429, 400/403) is retried or resolved; ambiguous (5xx, a
timeout or a reset after the request was received) is `unknown` and never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import time, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from bot.delivery.sender import SenderState
from bot.heartbeat import run_heartbeat
from core.clock import ManualClock
from core.redis_names import RedisNames
from core.settings import Settings
from tests.bot_harness import ADMIN_ID, running_bot
from tests.delivery_harness import add_alert, add_user, poll_until, publish, running_delivery, statuses
from tests.fakes.telegram_api import FakeTelegram
from tests.sender_harness import NOW, counted, fan_out, running_sender
from webapp.app import create_app


async def _row(db: asyncpg.Pool, chat_id: int) -> asyncpg.Record:
    row: asyncpg.Record = await db.fetchrow(
        "SELECT status, attempts, error, due_at, chat_id FROM deliveries WHERE chat_id = $1", chat_id
    )
    return row


async def _status_is(db: asyncpg.Pool, chat_id: int, status: str) -> bool:
    return (await statuses(db)).get(chat_id) == status


async def _all_settled(db: asyncpg.Pool) -> bool:
    open_rows = await db.fetchval("SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending')")
    return bool(open_rows == 0)


@pytest.mark.parametrize("delivered", [False, True], ids=["before-delivery", "after-delivery"])
async def test_a_5xx_is_unknown_counted_and_never_sent_again(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram, delivered: bool
):
    clock = ManualClock(NOW)
    await add_user(db, 1201)
    await add_user(db, 1202)
    tg.server_error(chat_id=1201, delivered=delivered)
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    before = counted("unknown")
    async with running_sender(settings, db, tg, clock) as sender:
        await poll_until(lambda: _all_settled(db))
        clock.advance(timedelta(minutes=10))  # long after any backoff: still nothing is resent
        sender.wake()
        await asyncio.sleep(0.3)
    row = await _row(db, 1201)
    assert (row["status"], row["attempts"], row["error"]) == ("unknown", 1, "Bad Gateway")
    assert await _row(db, 1202) is not None and (await _row(db, 1202))["status"] == "sent"
    assert len(tg.calls_to("sendMessage", 1201)) == 1
    assert len(tg.delivered_to(1201)) == (1 if delivered else 0)
    assert counted("unknown") - before == 1


async def test_a_timeout_after_telegram_received_the_request_is_unknown_and_delivered_once(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    await add_user(db, 1301)
    await add_user(db, 1302)
    tg.stall_after_receipt(chat_id=1301)
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    before = counted("unknown")
    async with running_sender(settings, db, tg, clock, send_timeout=2) as sender:
        await poll_until(lambda: _status_is(db, 1302, "sent"))  # the stall holds up no one else
        await poll_until(lambda: _status_is(db, 1301, "unknown"), timeout=15)
        clock.advance(timedelta(minutes=10))
        sender.wake()
        await asyncio.sleep(0.3)
    row = await _row(db, 1301)
    assert (row["status"], row["attempts"], row["error"]) == ("unknown", 1, "Request timeout error")
    assert len(tg.calls_to("sendMessage", 1301)) == 1
    assert len(tg.delivered_to(1301)) == 1
    assert counted("unknown") - before == 1


async def test_a_connection_reset_after_receipt_is_unknown_and_delivered_once(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    await add_user(db, 1401)
    tg.reset_after_receipt(chat_id=1401)
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    async with running_sender(settings, db, tg, clock) as sender:
        await poll_until(lambda: _status_is(db, 1401, "unknown"))
        clock.advance(timedelta(minutes=10))
        sender.wake()
        await asyncio.sleep(0.3)
    row = await _row(db, 1401)
    assert row["status"] == "unknown" and "Server disconnected" in row["error"]
    assert len(tg.calls_to("sendMessage", 1401)) == 1
    assert len(tg.delivered_to(1401)) == 1


async def test_connection_refused_is_retried_with_backoff_and_sent_once(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    await add_user(db, 1501)
    alert = await add_alert(db, NOW)
    port = tg.port
    async with running_sender(settings, db, tg, clock) as sender:
        await tg.stop()  # nothing listens: the request is never written
        await fan_out(db, alert.id)
        sender.wake()
        await poll_until(lambda: _row_matches(db, 1501, "pending", attempts=1))
        row = await _row(db, 1501)
        assert row["due_at"] == clock.now() + timedelta(seconds=2)  # backoff(1)
        assert "Cannot connect" in row["error"]
        tg.port = port
        await tg.start()
        clock.advance(timedelta(seconds=2))
        sender.wake()
        await poll_until(lambda: _status_is(db, 1501, "sent"))
    assert (await _row(db, 1501))["attempts"] == 2
    assert len(tg.delivered_to(1501)) == 1


async def test_connection_refused_until_the_attempts_run_out_is_failed(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    await add_user(db, 1551)
    alert = await add_alert(db, NOW)
    await tg.stop()
    await fan_out(db, alert.id)
    async with running_sender(settings, db, tg, clock, max_attempts=2) as sender:
        await poll_until(lambda: _row_matches(db, 1551, "pending", attempts=1))
        clock.advance(timedelta(seconds=2))
        sender.wake()
        await poll_until(lambda: _status_is(db, 1551, "failed"))
    assert (await _row(db, 1551))["attempts"] == 2


async def _row_matches(db: asyncpg.Pool, chat_id: int, status: str, *, attempts: int) -> bool:
    row = await _row(db, chat_id)
    return row is not None and row["status"] == status and row["attempts"] == attempts


async def test_a_revoked_token_stops_the_sender_loudly_turns_health_red_and_fails_nothing(
    settings: Settings,
    db: asyncpg.Pool,
    redis: Redis,
    names: RedisNames,
    tg: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
):
    clock = ManualClock(NOW)
    users = list(range(1601, 1631))
    for user in users:
        await add_user(db, user)
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    tg.revoke_token()
    state = SenderState()
    heartbeat = asyncio.create_task(
        run_heartbeat(
            redis,
            names,
            mode="polling",
            username="volspike_test_bot",
            clock=clock,
            problem=lambda: state.stopped,
            changed=state.changed,
        )
    )
    app = create_app(settings, pool=db, redis=redis)
    try:
        async with TestClient(TestServer(app)) as client:
            with caplog.at_level(logging.ERROR, logger="bot.delivery.sender"):
                async with running_sender(settings, db, tg, clock, state=state):
                    await poll_until(lambda: _bot_health_is_red(client))
                    await asyncio.sleep(0.3)  # several claim polls while stopped
                    assert state.stopped == "Telegram rejected the bot token: Unauthorized"
                    gauge = REGISTRY.get_sample_value("volspike_sender_stopped")
                    assert gauge == 1.0
                    body = await (await client.get("/health")).json()
                    assert body["services"]["bot"]["state"] == "stopped"
                    assert "bot token" in body["services"]["bot"]["error"]
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
    rows = await db.fetch("SELECT status, attempts FROM deliveries")
    assert {(r["status"], r["attempts"]) for r in rows} == {("pending", 0)}  # nothing failed, nothing used
    assert len(tg.calls_to("sendMessage")) < len(users) / 2  # not the whole queue at full speed
    assert any("SENDER STOPPED" in r.getMessage() for r in caplog.records)


async def _bot_health_is_red(client: TestClient) -> bool:
    body = await (await client.get("/health")).json()
    bot = body["services"]["bot"]
    return bot.get("ok") is False and bot.get("state") == "stopped"


async def test_a_group_upgraded_to_a_supergroup_is_moved_and_gets_its_alerts_there(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    old, new = -4001, -1004001
    await db.execute(
        "INSERT INTO chats (id, kind, title, tier, connected_by) VALUES ($1, 'group', 'G', 'elite', 9)", old
    )
    first = await add_alert(db, NOW)
    second = await add_alert(db, NOW, symbol="ETHUSDT", asset="ETH")
    await fan_out(db, first.id)
    await fan_out(db, second.id)
    tg.migrate(old, new)
    before = counted("migrated")
    async with running_sender(settings, db, tg, clock):
        await poll_until(lambda: _chat_sent(db, new, 2), timeout=15)
    assert await db.fetch("SELECT id, kind, active FROM chats") == [(new, "supergroup", True)]
    rows = await db.fetch("SELECT chat_id, status, attempts FROM deliveries ORDER BY alert_id")
    assert [tuple(r) for r in rows] == [(new, "sent", 1), (new, "sent", 1)]
    assert len(tg.delivered_to(new)) == 2 and tg.delivered_to(old) == []
    assert len(tg.calls_to("sendMessage", old)) == 1  # a row claimed for the old id moved without a call
    assert counted("migrated") - before == 2  # both rows moved
    third = await add_alert(db, NOW, symbol="SOLUSDT", asset="SOL")
    await fan_out(db, third.id)
    assert await db.fetchval("SELECT chat_id FROM deliveries WHERE alert_id = $1", third.id) == new


async def _chat_sent(db: asyncpg.Pool, chat_id: int, count: int) -> bool:
    n = await db.fetchval("SELECT count(*) FROM deliveries WHERE chat_id = $1 AND status = 'sent'", chat_id)
    return bool(n == count)


async def test_one_chats_429_pauses_that_chat_only_and_its_rows_expire_rather_than_go_out_late(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    for user in (1701, 1702, 1703):
        await add_user(db, user)
    tg.rate_limit(3600, chat_id=1701)
    first = await add_alert(db, NOW)
    await fan_out(db, first.id)
    expired_before = counted("expired")
    async with running_sender(settings, db, tg, clock) as sender:
        await poll_until(lambda: _status_is(db, 1702, "sent"))
        await poll_until(lambda: _status_is(db, 1703, "sent"))
        row = await _row(db, 1701)
        assert (row["status"], row["attempts"]) == ("pending", 0)
        assert row["due_at"] == NOW + timedelta(seconds=3600)
        assert sender.limiter.paused_for == 0  # everyone else goes on
        second = await add_alert(db, NOW, symbol="ETHUSDT", asset="ETH")
        await fan_out(db, second.id)
        sender.wake()
        await poll_until(lambda: _alert_chat_status(db, second.id, 1702, "sent"))
        await poll_until(lambda: _alert_chat_status(db, second.id, 1703, "sent"))
        assert await _alert_chat_status(db, second.id, 1701, "pending")
        assert len(tg.calls_to("sendMessage", 1701)) == 1  # the paused chat was not asked again
        clock.advance(timedelta(seconds=3600))
        sender.wake()
        await poll_until(lambda: _all_settled(db))
    rows = await db.fetch("SELECT status FROM deliveries WHERE chat_id = 1701")
    assert [r["status"] for r in rows] == ["expired", "expired"]
    assert tg.delivered_to(1701) == []
    assert counted("expired") - expired_before == 2


async def _alert_chat_status(db: asyncpg.Pool, alert_id: int | None, chat_id: int, status: str) -> bool:
    found = await db.fetchval(
        "SELECT status FROM deliveries WHERE alert_id = $1 AND chat_id = $2", alert_id, chat_id
    )
    return bool(found == status)


async def test_an_alert_older_than_alert_max_age_is_expired_counted_and_not_sent(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    await add_user(db, 1801, tier="free")
    await add_user(db, 1802, tier="elite")
    old = await add_alert(db, NOW - timedelta(minutes=31))
    fresh = await add_alert(db, NOW - timedelta(minutes=16), symbol="ETHUSDT", asset="ETH")
    await fan_out(db, old.id, NOW - timedelta(minutes=31))
    await fan_out(db, fresh.id, NOW - timedelta(minutes=16))
    before = counted("expired")
    async with running_sender(settings, db, tg, ManualClock(NOW), max_age=timedelta(minutes=30)):
        await poll_until(lambda: _all_settled(db))
    rows = await db.fetch("SELECT alert_id, chat_id, status FROM deliveries ORDER BY alert_id, chat_id")
    assert [tuple(r) for r in rows] == [
        (old.id, 1801, "expired"),
        (old.id, 1802, "expired"),
        (fresh.id, 1801, "sent"),  # 16 minutes old, the free tier's 15-minute delay: still news
        (fresh.id, 1802, "sent"),
    ]
    assert all("ETH" in c.text for c in tg.delivered)
    assert counted("expired") - before == 2


async def test_quiet_hours_are_checked_again_when_a_row_is_claimed(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)  # 12:07:30 UTC
    await add_user(db, 1901, tier="pro")
    await add_user(db, 1902, tier="elite")
    await add_user(db, 1903, tier="free")  # quiet hours are not a free-tier feature
    await add_user(db, 1904, tier="pro")
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)  # planned while nobody had quiet hours
    await db.execute(
        "UPDATE user_settings SET quiet_start = '12:00', quiet_end = '13:00' WHERE user_id IN (1901, 1903)"
    )
    # 21:00-22:00 in Tokyo (UTC+9) is 12:00-13:00 UTC.
    await db.execute(
        "UPDATE user_settings SET quiet_start = $1, quiet_end = $2, timezone = 'Asia/Tokyo' "
        "WHERE user_id = 1902",
        time(21),
        time(22),
    )
    await db.execute(
        "UPDATE user_settings SET quiet_start = '13:00', quiet_end = '14:00' WHERE user_id = 1904"
    )
    async with running_sender(settings, db, tg, clock) as sender:
        clock.advance(timedelta(minutes=15))  # everyone is due
        sender.wake()
        await poll_until(lambda: _all_settled(db))
    assert await statuses(db) == {1901: "skipped", 1902: "skipped", 1903: "sent", 1904: "sent"}
    assert await db.fetchval("SELECT error FROM deliveries WHERE chat_id = 1901") == "quiet hours"
    assert sorted(c.chat_id for c in tg.delivered) == [1903, 1904]


@pytest.mark.parametrize("paid", [True, False])
async def test_elite_alerts_use_paid_broadcast_only_when_enabled(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram, paid: bool
):
    await add_user(db, 2001, tier="elite")
    await add_user(db, 2002, tier="free")
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    async with running_sender(
        settings, db, tg, ManualClock(NOW + timedelta(minutes=15)), paid_broadcast=paid
    ):
        await poll_until(lambda: _all_settled(db))
    [elite] = tg.calls_to("sendMessage", 2001)
    [free] = tg.calls_to("sendMessage", 2002)
    assert elite.params.get("allow_paid_broadcast") == ("true" if paid else None)
    assert "allow_paid_broadcast" not in free.params


async def test_stats_shows_the_unknown_and_expired_deliveries(
    settings: Settings, db: asyncpg.Pool, redis: Redis
):
    async with running_bot(settings, db, redis) as app:
        now = app.clock.now()
        await app.add_user(2101, tier="elite")
        await app.add_user(2102, tier="elite")
        app.tg.server_error(chat_id=2101)
        fresh = await add_alert(db, now)
        stale = await add_alert(db, now - timedelta(hours=1), symbol="ETHUSDT", asset="ETH")
        await fan_out(db, fresh.id, now)
        await fan_out(db, stale.id, now - timedelta(hours=1))
        async with running_sender(settings, db, app.tg, app.clock, bot=app.bot):
            await poll_until(lambda: _all_settled(db))
        [reply] = await app.send(ADMIN_ID, "/stats")
    assert "Deliveries: sent 1, pending 0, failed 0, blocked 0, unknown 1, expired 2" in reply.text


async def test_stopping_the_delivery_service_with_requests_open_loses_nothing_and_sends_nothing_twice(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    users = list(range(2201, 2231))
    for user in users:
        await add_user(db, user)
    alert = await add_alert(db, NOW)
    tg.hold_answers()
    async with running_delivery(settings, db, redis, tg, clock) as delivery:
        await publish(redis, names, alert)  # stream → worker → rows → sender
        await tg.wait_for_call("sendMessage", count=4)
        delivery.task.cancel()  # SIGTERM reaches `run_delivery`
        await asyncio.sleep(0.1)
        tg.release_answers()  # Telegram answers within the grace period
        await asyncio.wait({delivery.task}, timeout=10)
    found = await statuses(db)
    assert len(found) == len(users) and set(found.values()) <= {"sent", "pending"}
    assert {c for c, s in found.items() if s == "sent"} == {c.chat_id for c in tg.delivered}

    async with running_delivery(settings, db, redis, tg, clock):
        await poll_until(lambda: _all_settled(db), timeout=20)
    assert set((await statuses(db)).values()) == {"sent"}
    assert sorted(c.chat_id for c in tg.delivered) == users  # every user exactly once
