"""An alert in the Redis stream becomes Telegram messages: tier delays, fan-out, the stream's
consumer group (duplicates, malformed entries, a crashed consumer), connected groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from redis.asyncio import Redis

from core.alerts import AlertType
from core.clock import ManualClock
from core.redis_names import RedisNames
from core.settings import Settings
from tests.delivery_harness import add_alert, add_user, poll_until, publish, running_delivery, statuses
from tests.fakes.telegram_api import FakeTelegram

ELITE, PRO, FREE = 101, 102, 103
START = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)


async def test_each_tier_gets_the_alert_after_its_delay(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    await add_user(db, ELITE, tier="elite")
    await add_user(db, PRO, tier="pro", language="ru")
    await add_user(db, FREE, tier="free")
    alert = await add_alert(db, START)
    async with running_delivery(settings, db, redis, tg, clock):
        await publish(redis, names, alert)
        calls = await tg.wait_for_call("sendMessage", ELITE)
        assert calls[0].text.startswith("<b>BTC hourly volume $5.00B (3.33× prev) — VOLUME SPIKE!</b>")
        assert "Price: $97,123.40" in calls[0].text and "Funding: +0.0100%" in calls[0].text
        buttons = [b for row in calls[0].params["reply_markup"]["inline_keyboard"] for b in row]
        assert buttons[0]["web_app"]["url"] == "https://volspike.test/chart/BTCUSDT"
        assert [b.get("callback_data") for b in buttons[1:]] == [
            f"chart:{alert.id}",
            "mute:BTCUSDT",
            "settings:open",
        ]
        due = {
            row["chat_id"]: row["due_at"] for row in await db.fetch("SELECT chat_id, due_at FROM deliveries")
        }
        assert due == {ELITE: START, PRO: START + timedelta(minutes=5), FREE: START + timedelta(minutes=15)}
        assert not tg.calls_to("sendMessage", PRO) and not tg.calls_to("sendMessage", FREE)

        clock.advance(timedelta(minutes=4, seconds=59))
        clock.advance(timedelta(seconds=1))
        await tg.wait_for_call("sendMessage", PRO)
        assert not tg.calls_to("sendMessage", FREE)

        clock.advance(timedelta(minutes=10))
        free_calls = await tg.wait_for_call("sendMessage", FREE)
        assert "This alert is 15 minutes late. /status" in free_calls[0].text
        assert "15 minutes late" not in tg.calls_to("sendMessage", ELITE)[0].text
        await poll_until(lambda: _all_sent(db))
    assert [len(tg.calls_to("sendMessage", chat)) for chat in (ELITE, PRO, FREE)] == [1, 1, 1]


async def _all_sent(db: asyncpg.Pool) -> bool:
    return set((await statuses(db)).values()) == {"sent"}


async def test_duplicate_stream_entries_for_one_alert_send_one_message(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    await add_user(db, ELITE)
    alert = await add_alert(db, START)
    async with running_delivery(settings, db, redis, tg, clock):
        for _ in range(3):
            await publish(redis, names, alert)
        await tg.wait_for_call("sendMessage", ELITE)
        await poll_until(lambda: _stream_acked(redis, names, 3))
        await poll_until(lambda: _all_sent(db))
    assert len(tg.calls_to("sendMessage", ELITE)) == 1
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 1


async def _stream_acked(redis: Redis, names: RedisNames, entries: int) -> bool:
    groups = await redis.xinfo_groups(names.alerts_stream)
    group = next(g for g in groups if g["name"] == names.delivery_group.encode())
    return group["pending"] == 0 and group["entries-read"] == entries


async def test_malformed_entries_and_unknown_alerts_are_acknowledged_and_skipped(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    await add_user(db, ELITE)
    good = await add_alert(db, START)
    ghost = good.with_id(good.id + 1000)  # type: ignore[operator]
    async with running_delivery(settings, db, redis, tg, clock):
        await redis.xadd(names.alerts_stream, {"alert": b"{not json"})
        await redis.xadd(names.alerts_stream, {"other": b"field"})
        await redis.xadd(names.alerts_stream, {"alert": b'{"symbol": "BTCUSDT"}'})
        await publish(redis, names, ghost)
        await publish(redis, names, good)
        await tg.wait_for_call("sendMessage", ELITE)
        await poll_until(lambda: _stream_acked(redis, names, 5))
    assert len(tg.calls_to("sendMessage")) == 1


async def test_entries_of_a_crashed_consumer_are_claimed_and_delivered_once(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    for user in (ELITE, ELITE + 1):
        await add_user(db, user)
    first = await add_alert(db, START)
    second = await add_alert(db, START, symbol="ETHUSDT", asset="ETH")
    await redis.xgroup_create(names.alerts_stream, names.delivery_group, id="$", mkstream=True)
    await publish(redis, names, first)
    await publish(redis, names, second)
    # Consumer A reads both entries and dies before acknowledging them.
    read = await redis.xreadgroup(names.delivery_group, "consumer-a", {names.alerts_stream: ">"}, count=10)
    assert len(read[0][1]) == 2
    async with running_delivery(settings, db, redis, tg, clock, consumer="consumer-b"):
        await tg.wait_for(lambda calls: len([c for c in calls if c.method == "sendMessage"]) == 4)
        await poll_until(lambda: _all_sent(db))
        pending = await redis.xpending(names.alerts_stream, names.delivery_group)
        assert pending["pending"] == 0
    for user in (ELITE, ELITE + 1):
        texts = [c.text for c in tg.calls_to("sendMessage", user)]
        assert len(texts) == 2 and any("BTC " in t for t in texts) and any("ETH " in t for t in texts)


async def test_a_new_consumer_group_does_not_fan_out_an_alert_already_fanned_out(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    await add_user(db, ELITE)
    old = await add_alert(db, START, symbol="ETHUSDT", asset="ETH")
    await db.execute("UPDATE alerts SET fanned_out_at = $2 WHERE id = $1", old.id, START)
    await publish(redis, names, old)  # in the stream before the group existed
    new = await add_alert(db, START)
    async with running_delivery(settings, db, redis, tg, clock):
        await publish(redis, names, new)
        await tg.wait_for_call("sendMessage", ELITE)
        await poll_until(lambda: _all_sent(db))
    texts = [c.text for c in tg.calls_to("sendMessage", ELITE)]
    assert len(texts) == 1 and "BTC hourly volume" in texts[0]


async def test_connected_group_gets_spikes_only_with_a_url_chart_button(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    group = -100123
    await db.execute(
        "INSERT INTO chats (id, kind, title, tier, connected_by) "
        "VALUES ($1, 'supergroup', 'Desk', 'elite', 1)",
        group,
    )
    await db.execute(
        "INSERT INTO chats (id, kind, title, tier, connected_by, active) "
        "VALUES (-5, 'group', 'Old', 'elite', 1, false)"
    )
    await add_user(db, ELITE)
    spike = await add_alert(db, START)
    update = await add_alert(db, START, alert_type=AlertType.HALF_UPDATE)
    async with running_delivery(settings, db, redis, tg, clock):
        await publish(redis, names, spike)
        await tg.wait_for_call("sendMessage", ELITE)  # an update follows its SPIKE
        await publish(redis, names, update)
        await tg.wait_for_call("sendMessage", group)
        await tg.wait_for_call("editMessageText", ELITE)  # the update edits the SPIKE message
        await poll_until(lambda: _all_sent(db))
    group_calls = tg.calls_to("sendMessage", group)
    assert len(group_calls) == 1 and "HALF-UPDATE" not in group_calls[0].text
    keyboard = group_calls[0].params["reply_markup"]["inline_keyboard"]
    assert keyboard == [[{"text": "Chart", "url": "https://volspike.test/chart/BTCUSDT"}]]
    assert not tg.calls_to("sendMessage", -5)
    [edit] = tg.calls_to("editMessageText", ELITE)
    assert edit.text.startswith("<b>HALF-UPDATE — half-hour: BTC")
    assert edit.params["message_id"] == str(tg.calls_to("sendMessage", ELITE)[0].message_id)


async def test_alert_is_localized_for_the_recipient_and_has_no_chart_without_webapp_url(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    await add_user(db, ELITE, language="ru")
    alert = await add_alert(db, START, funding=None)
    async with running_delivery(settings, db, redis, tg, clock, webapp_url=None):
        await publish(redis, names, alert)
        calls = await tg.wait_for_call("sendMessage", ELITE)
    keyboard = calls[0].params["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for row in keyboard for b in row] == [
        f"chart:{alert.id}",
        "mute:BTCUSDT",
        "settings:open",
    ]
    assert "$5.00B" in calls[0].text and "3.33×" in calls[0].text
    assert "VOLUME SPIKE" not in calls[0].text or calls[0].text.startswith("<b>")


async def test_a_deleted_stream_is_recreated_and_new_alerts_still_arrive(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(START)
    await add_user(db, ELITE)
    alert = await add_alert(db, START)
    async with running_delivery(settings, db, redis, tg, clock):
        await redis.delete(names.alerts_stream)  # e.g. an operator's mistake
        await publish(redis, names, alert)  # recreates the stream, without the group
        await tg.wait_for_call("sendMessage", ELITE)
        await poll_until(lambda: _all_sent(db))
    assert len(tg.calls_to("sendMessage", ELITE)) == 1
