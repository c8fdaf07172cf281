"""Updates edit the chat's message of the symbol-hour (editMessageText through aiogram's real HTTP
session against the look-alike, which answers as Telegram does): a new message only when Telegram
refuses the edit (the message deleted, no longer editable), the message is older than Telegram's
edit window, or no message of the hour is on record; "message is not modified" is a success; an
edit whose answer is lost is `unknown` and never followed by a new message; an update claimed
beside its own SPIKE waits for it and edits it."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from core.alerts import Alert, AlertType
from core.clock import ManualClock
from core.settings import Settings
from tests.delivery_harness import add_alert, add_user, poll_until
from tests.fakes.telegram_api import NOT_MODIFIED, FakeTelegram
from tests.sender_harness import NOW, fan_out, running_sender

CHAT = 2101
HALF_AT = NOW.replace(minute=30, second=0)
CLOSE_AT = NOW.replace(minute=59, second=59)


async def _hour(db: asyncpg.Pool) -> tuple[Alert, Alert, Alert]:
    await add_user(db, CHAT)
    return await _hour_without_user(db)


async def _settled(db: asyncpg.Pool, alert: Alert) -> bool:
    assert alert.id is not None
    return await _settled_id(db, alert.id)


async def _row(db: asyncpg.Pool, alert: Alert) -> tuple[str, int | None, bool]:
    row = await db.fetchrow(
        "SELECT status, message_id, edited FROM deliveries WHERE alert_id = $1 AND chat_id = $2",
        alert.id,
        CHAT,
    )
    assert row is not None
    return row["status"], row["message_id"], row["edited"]


async def _send(db: asyncpg.Pool, alert: Alert, clock: ManualClock) -> None:
    clock.set(alert.detected_at)
    await fan_out(db, alert.id, alert.detected_at)
    await poll_until(lambda: _settled(db, alert))


@pytest.mark.parametrize("refusal", ["deleted", "uneditable"])
async def test_a_refused_edit_sends_a_new_message_and_the_next_update_edits_that_one(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram, refusal: str
):
    spike, half, full = await _hour(db)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock):
        await _send(db, spike, clock)
        [spike_call] = tg.calls_to("sendMessage", CHAT)
        assert spike_call.message_id is not None
        if refusal == "deleted":
            tg.delete_message(CHAT, spike_call.message_id)
        else:
            tg.make_uneditable(CHAT, spike_call.message_id)
        await _send(db, half, clock)
        await _send(db, full, clock)
    edits = tg.calls_to("editMessageText", CHAT)
    spike_again, half_call = tg.calls_to("sendMessage", CHAT)
    assert spike_again is spike_call
    assert half_call.text.startswith("<b>HALF-UPDATE — half-hour: BTC 12:00–12:30 (UTC)</b>")
    # The HALF tried the SPIKE's message, was refused, went out new; the FULL edited the new one.
    assert [e.params["message_id"] for e in edits] == [str(spike_call.message_id), str(half_call.message_id)]
    assert "Since the spike at 12:07: $5.00B → $8.00B, 3.33× → 5.33×" in edits[1].text
    assert await _row(db, spike) == ("sent", spike_call.message_id, False)
    assert await _row(db, half) == ("sent", half_call.message_id, False)
    assert await _row(db, full) == ("sent", half_call.message_id, True)
    shown = tg.message(CHAT, half_call.message_id)
    assert shown is not None and shown.text == edits[1].text


async def test_message_is_not_modified_is_a_success(settings: Settings, db: asyncpg.Pool, tg: FakeTelegram):
    spike, half, _ = await _hour(db)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock):
        await _send(db, spike, clock)
        tg.fail("editMessageText", 400, NOT_MODIFIED, chat_id=CHAT)
        await _send(db, half, clock)
    [spike_call] = tg.calls_to("sendMessage", CHAT)
    assert len(tg.calls_to("editMessageText", CHAT)) == 1
    assert await _row(db, half) == ("sent", spike_call.message_id, True)


async def test_without_a_spike_message_on_record_the_update_is_a_new_message(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    spike, half, _ = await _hour(db)
    await fan_out(db, spike.id)
    # The SPIKE's outcome is unknown (a crash while it was in flight): no message id to edit.
    await db.execute("UPDATE deliveries SET status = 'unknown' WHERE alert_id = $1", spike.id)
    clock = ManualClock(HALF_AT)
    async with running_sender(settings, db, tg, clock):
        await _send(db, half, clock)
    assert not tg.calls_to("editMessageText", CHAT)
    [half_call] = tg.calls_to("sendMessage", CHAT)
    assert "HALF-UPDATE" in half_call.text
    assert await _row(db, half) == ("sent", half_call.message_id, False)


async def test_a_message_older_than_the_edit_window_is_not_edited(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    spike, half, _ = await _hour(db)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock):
        await _send(db, spike, clock)
        # As if the SPIKE had gone out 48 hours before the update (Telegram's edit limit).
        await db.execute(
            "UPDATE deliveries SET sent_at = sent_at - interval '48 hours' WHERE alert_id = $1", spike.id
        )
        await _send(db, half, clock)
    assert not tg.calls_to("editMessageText", CHAT)
    assert len(tg.calls_to("sendMessage", CHAT)) == 2


async def test_an_edit_whose_answer_is_lost_is_unknown_and_never_followed_by_a_new_message(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    spike, half, _ = await _hour(db)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock) as sender:
        await _send(db, spike, clock)
        tg.reset_after_receipt(chat_id=CHAT, method="editMessageText")
        await _send(db, half, clock)
        clock.advance(timedelta(minutes=10))
        sender.wake()
        await poll_until(lambda: _settled(db, half))
    [spike_call] = tg.calls_to("sendMessage", CHAT)
    assert len(tg.calls_to("editMessageText", CHAT)) == 1
    status, message_id, _ = await _row(db, half)
    assert (status, message_id) == ("unknown", None)
    assert spike_call.message_id is not None
    shown = tg.message(CHAT, spike_call.message_id)
    assert shown is not None and shown.edits == 1  # Telegram made the edit; the user has one message


async def test_an_update_claimed_beside_its_spike_waits_for_it_and_edits_it(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    spike, half, _ = await _hour(db)
    # A backlog: the SPIKE and the HALF are both due when the sender starts (the HALF row first in
    # the claim order would otherwise go out before its SPIKE, as a second message).
    await fan_out(db, spike.id, NOW)
    await fan_out(db, half.id, NOW)
    await db.execute(
        "UPDATE deliveries SET due_at = due_at - interval '1 minute' WHERE alert_id = $1", half.id
    )
    clock = ManualClock(HALF_AT)
    async with running_sender(settings, db, tg, clock):
        await poll_until(lambda: _settled(db, half))
    [spike_call] = tg.calls_to("sendMessage", CHAT)
    assert "VOLUME SPIKE" in spike_call.text
    [edit] = tg.calls_to("editMessageText", CHAT)
    assert edit.params["message_id"] == str(spike_call.message_id) and "HALF-UPDATE" in edit.text
    assert await _row(db, half) == ("sent", spike_call.message_id, True)


async def test_an_update_never_edits_the_early_warning_and_an_early_warning_edits_nothing(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    """The early warning is its own message, kept as it was said: sent new, and never the message
    an update edits, even when the SPIKE's message is not on record."""
    await add_user(db, CHAT, tier="elite", alert_types=["SPIKE", "HALF_UPDATE", "FULL_UPDATE", "EARLY"])
    early = NOW - timedelta(minutes=2)
    alert_id = await db.fetchval(
        "INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume,"
        " previous_volume, volume_ratio, price, funding_rate, projected_volume, published_at)"
        " VALUES ('BTCUSDT', 'BTC', 'EARLY', $1, $2, 1.2e9, 1.5e9, 0.8, 97000, 0.0001, 5.1e9, now())"
        " RETURNING id",
        NOW.replace(minute=0, second=0),
        early,
    )
    _, half, _ = await _hour_without_user(db)
    clock = ManualClock(early)
    async with running_sender(settings, db, tg, clock):
        await fan_out(db, alert_id, early)
        await poll_until(lambda: _settled_id(db, alert_id))
        [early_call] = tg.calls_to("sendMessage", CHAT)
        assert "EARLY WARNING (projection)" in early_call.text
        spike_id = await db.fetchval("SELECT id FROM alerts WHERE alert_type = 'SPIKE'")
        await fan_out(db, spike_id, NOW)
        # the SPIKE's outcome is unknown (a crash while it was in flight): no message id to edit
        await db.execute("UPDATE deliveries SET status = 'unknown' WHERE alert_id = $1", spike_id)
        await _send(db, half, clock)
    assert not tg.calls_to("editMessageText", CHAT)
    _, half_message = tg.calls_to("sendMessage", CHAT)
    assert "HALF-UPDATE" in half_message.text
    assert await _row(db, half) == ("sent", half_message.message_id, False)


async def _hour_without_user(db: asyncpg.Pool) -> tuple[Alert, Alert, Alert]:
    spike = await add_alert(db, NOW)
    half = await add_alert(db, HALF_AT, alert_type=AlertType.HALF_UPDATE, current=6e9, ratio=4.0)
    full = await add_alert(db, CLOSE_AT, alert_type=AlertType.FULL_UPDATE, current=8e9, ratio=5.33)
    return spike, half, full


async def _settled_id(db: asyncpg.Pool, alert_id: int) -> bool:
    status = await db.fetchval(
        "SELECT status FROM deliveries WHERE alert_id = $1 AND chat_id = $2", alert_id, CHAT
    )
    return status not in ("pending", "sending", None)
