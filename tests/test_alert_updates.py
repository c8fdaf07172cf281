"""Updates read as updates: an Elite user's half-hour and hour-close updates say what they are,
which hour in the user's time zone, and how volume, ratio and price moved since the SPIKE of that
hour; they edit the user's SPIKE message (one message per symbol-hour); sent by the real delivery
worker to the Telegram look-alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from redis.asyncio import Redis

from core.alerts import AlertType
from core.clock import ManualClock
from core.redis_names import RedisNames
from core.settings import Settings
from tests.delivery_harness import add_alert, add_user, publish, running_delivery
from tests.fakes.telegram_api import FakeTelegram

EN, RU = 201, 202
SPIKE_AT = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)
HALF_AT = datetime(2026, 3, 2, 12, 30, 0, tzinfo=UTC)
CLOSE_AT = datetime(2026, 3, 2, 12, 59, 59, 999000, tzinfo=UTC)  # the closing kline of the 12:00 hour

EXPECTED = {
    EN: [
        "<b>UPDATE — hour closed: BTC 15:00–16:00 (UTC+3)</b>",
        "Hourly volume $8.00B (5.33× prev)",
        "Since the spike at 15:07: $5.00B → $8.00B, 3.33× → 5.33×",
        "Price since the spike: +1.93% ($97,123.40 → $99,000.00)",
    ],
    RU: [
        "<b>ОБНОВЛЕНИЕ — час закрыт: BTC 15:00–16:00 (Europe/Moscow)</b>",
        "Объём за час $8.00B (5.33× к пред.)",
        "С всплеска в 15:07: $5.00B → $8.00B, 3.33× → 5.33×",
        "Цена с всплеска: +1.93% ($97,123.40 → $99,000.00)",
    ],
}
HALF = {
    EN: ["<b>HALF-UPDATE — half-hour: BTC 15:00–15:30 (UTC+3)</b>", "Volume so far $6.00B (4.00× prev)"],
    RU: [
        "<b>ПОЛУЧАСОВОЕ ОБНОВЛЕНИЕ — полчаса: BTC 15:00–15:30 (Europe/Moscow)</b>",
        "Объём пока $6.00B (4.00× к пред.)",
    ],
}


async def test_half_and_full_updates_say_what_they_are_the_hour_and_the_move_since_the_spike(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, tg: FakeTelegram
):
    clock = ManualClock(SPIKE_AT)
    await add_user(db, EN, tier="elite", timezone="Etc/GMT-3")
    await add_user(db, RU, tier="elite", language="ru", timezone="Europe/Moscow")
    spike = await add_alert(db, SPIKE_AT)
    half = await add_alert(db, HALF_AT, alert_type=AlertType.HALF_UPDATE, current=6e9, ratio=4.0, price=98000)
    full = await add_alert(
        db, CLOSE_AT, alert_type=AlertType.FULL_UPDATE, current=8e9, ratio=5.33, price=99000
    )
    assert full.hour == spike.hour
    async with running_delivery(settings, db, redis, tg, clock):
        await publish(redis, names, spike)
        for chat in (EN, RU):
            await tg.wait_for_call("sendMessage", chat)
        clock.set(HALF_AT)
        await publish(redis, names, half)
        for chat in (EN, RU):
            await tg.wait_for_call("editMessageText", chat)
        clock.set(CLOSE_AT + timedelta(seconds=1))
        await publish(redis, names, full)
        for chat in (EN, RU):
            await tg.wait_for_call("editMessageText", chat, count=2)
    for chat in (EN, RU):
        [first] = tg.calls_to("sendMessage", chat)  # one message for the symbol-hour
        assert "UPDATE" not in first.text and "ОБНОВЛЕНИЕ" not in first.text  # the SPIKE itself
        second, third = tg.calls_to("editMessageText", chat)
        assert second.params["message_id"] == third.params["message_id"] == str(first.message_id)
        assert second.text.split("\n")[:2] == HALF[chat]
        assert third.text.split("\n")[:4] == EXPECTED[chat]
        assert "::" not in third.text and ": BTC:" not in third.text
        assert first.message_id is not None
        shown = tg.message(chat, first.message_id)
        assert shown is not None and shown.text == third.text and shown.edits == 2
    rows = await db.fetch(
        "SELECT alert_id, status, message_id, edited FROM deliveries WHERE chat_id = $1 ORDER BY id", EN
    )
    [spike_message] = {r["message_id"] for r in rows}
    assert [(r["alert_id"], r["status"], r["edited"]) for r in rows] == [
        (spike.id, "sent", False),
        (half.id, "sent", True),
        (full.id, "sent", True),
    ]
    assert spike_message == tg.calls_to("sendMessage", EN)[0].message_id
