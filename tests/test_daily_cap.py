"""The optional daily cap through the real sender (aiogram's HTTP session against the Telegram
look-alike, real PostgreSQL, a ManualClock): after `cap` SPIKE messages of the user's local day,
each further SPIKE is held back into one summary message (sent by the first, edited by the next),
the user's midnight in their zone starts a new count, an update of a held-back SPIKE is not sent
(and never edits the summary), and a sender stopped with the summary in flight sends nothing twice
and loses nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from core.alerts import Alert, AlertType
from core.clock import ManualClock
from core.daily_cap import SHOWN, CapDay, summary_text, valid_cap
from core.settings import Settings
from tests.delivery_harness import add_alert, add_user, poll_until
from tests.fakes.telegram_api import FakeTelegram
from tests.sender_harness import NOW, fan_out, running_sender

CHAT = 2201
ZONE = "Asia/Tokyo"  # NOW (12:07:30 UTC) is 21:07:30 there; its midnight is 15:00 UTC
ASSETS = ("SOL", "DOGE", "XRP", "ADA", "AVAX", "LINK")


async def _capped_user(db: asyncpg.Pool, cap: int = 3) -> None:
    await add_user(db, CHAT, timezone=ZONE)
    await db.execute("UPDATE user_settings SET daily_cap = $2 WHERE user_id = $1", CHAT, cap)


async def _spikes(db: asyncpg.Pool, at: object = NOW, assets: tuple[str, ...] = ASSETS) -> list[Alert]:
    return [
        await add_alert(db, at, symbol=f"{asset}USDT", asset=asset, ratio=3.0 + i / 10)  # type: ignore[arg-type]
        for i, asset in enumerate(assets)
    ]


async def _rows(db: asyncpg.Pool) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT d.status, d.message_id, d.capped, d.error, a.asset, a.alert_type FROM deliveries d"
        " JOIN alerts a ON a.id = d.alert_id WHERE d.chat_id = $1 ORDER BY d.id",
        CHAT,
    )


async def _all_settled(db: asyncpg.Pool) -> bool:
    return not await db.fetchval(
        "SELECT count(*) FROM deliveries WHERE chat_id = $1 AND status IN ('pending', 'sending')", CHAT
    )


async def _send_one(db: asyncpg.Pool, alert: Alert, clock: ManualClock) -> None:
    clock.set(alert.detected_at)
    await fan_out(db, alert.id, alert.detected_at)
    await poll_until(lambda: _all_settled(db))


async def test_cap_3_and_6_spikes_make_3_alerts_and_one_summary_edited_twice(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    await _capped_user(db)
    spikes = await _spikes(db)
    # A backlog: all six are due at once; a capped user's SPIKEs still go one at a time.
    for spike in spikes:
        await fan_out(db, spike.id, NOW)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock):
        await poll_until(lambda: _all_settled(db))
    messages = tg.calls_to("sendMessage", CHAT)
    assert len(messages) == 4
    alerts, summary = messages[:3], messages[3]
    assert [m.text.split(" ", 1)[0].removeprefix("<b>") for m in alerts] == ["SOL", "DOGE", "XRP"]
    assert all("VOLUME SPIKE" in m.text for m in alerts)
    assert summary.text.startswith("Daily cap of 3 alerts reached.\nHeld back today: ADA 3.30× (1)")
    assert "/settings" in summary.text
    edits = tg.calls_to("editMessageText", CHAT)
    assert [e.params["message_id"] for e in edits] == [str(summary.message_id)] * 2
    assert "Held back today: ADA 3.30×, AVAX 3.40× (2)" in edits[0].text
    assert "Held back today: ADA 3.30×, AVAX 3.40×, LINK 3.50× (3)" in edits[1].text
    shown = tg.message(CHAT, summary.message_id)  # type: ignore[arg-type]
    assert shown is not None and shown.text == edits[1].text
    rows = await _rows(db)
    assert [(r["asset"], r["status"], r["capped"]) for r in rows] == [
        ("SOL", "sent", False),
        ("DOGE", "sent", False),
        ("XRP", "sent", False),
        ("ADA", "sent", True),
        ("AVAX", "sent", True),
        ("LINK", "sent", True),
    ]
    assert {r["message_id"] for r in rows[3:]} == {summary.message_id}


async def test_the_users_midnight_in_their_zone_starts_a_new_count(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    await _capped_user(db, cap=3)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock) as sender:
        for spike in await _spikes(db, NOW, ASSETS[:3]):
            await _send_one(db, spike, clock)
        # 23:55 in Tokyo (14:55 UTC): still the same local day, held back.
        [late] = await _spikes(db, NOW.replace(hour=14, minute=55), ("ADA",))
        await _send_one(db, late, clock)
        # 00:05 in Tokyo (15:05 UTC, long before UTC's midnight): a new day, alerts again.
        [next_day] = await _spikes(db, NOW.replace(hour=15, minute=5), ("AVAX",))
        sender.wake()
        await _send_one(db, next_day, clock)
    messages = tg.calls_to("sendMessage", CHAT)
    assert len(messages) == 5
    assert messages[3].text.startswith("Daily cap of 3 alerts reached.\nHeld back today: ADA")
    assert messages[4].text.startswith("<b>AVAX") and "VOLUME SPIKE" in messages[4].text
    assert not tg.calls_to("editMessageText", CHAT)
    rows = await _rows(db)
    assert [(r["asset"], r["capped"]) for r in rows][-2:] == [("ADA", True), ("AVAX", False)]


async def test_updates_of_a_held_back_spike_are_not_sent_and_never_edit_the_summary(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    await _capped_user(db, cap=1)
    sol, btc = await _spikes(db, NOW, ("SOL", "BTC"))
    half = await add_alert(
        db, NOW.replace(minute=30, second=0), alert_type=AlertType.HALF_UPDATE, current=6e9, ratio=4.0
    )
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock):
        await _send_one(db, sol, clock)
        await _send_one(db, btc, clock)  # held back: the summary
        await _send_one(db, half, clock)
    sent = tg.calls_to("sendMessage", CHAT)
    assert len(sent) == 2 and sent[1].text.startswith("Daily cap of 1 alerts reached.")
    assert not tg.calls_to("editMessageText", CHAT)
    rows = await _rows(db)
    assert [(r["asset"], r["alert_type"], r["status"], r["error"]) for r in rows] == [
        ("SOL", "SPIKE", "sent", None),
        ("BTC", "SPIKE", "sent", None),
        ("BTC", "HALF_UPDATE", "skipped", "daily cap"),
    ]


async def test_an_edit_refused_sends_a_new_summary_listing_the_day(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    await _capped_user(db, cap=1)
    sol, btc, eth = await _spikes(db, NOW, ("SOL", "BTC", "ETH"))
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock):
        await _send_one(db, sol, clock)
        await _send_one(db, btc, clock)
        first = tg.calls_to("sendMessage", CHAT)[1]
        tg.delete_message(CHAT, first.message_id)  # type: ignore[arg-type]
        await _send_one(db, eth, clock)
    [_, _, second] = tg.calls_to("sendMessage", CHAT)
    assert "Held back today: BTC 3.10×, ETH 3.20× (2)" in second.text
    rows = await _rows(db)
    assert [r["message_id"] for r in rows[1:]] == [first.message_id, second.message_id]


async def test_a_sender_stopped_with_the_summary_in_flight_repeats_nothing_and_loses_nothing(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    """The summary is delivered but its answer never comes (the sender stops with it open): the
    row is `unknown`, never sent again; the held-back SPIKEs behind it wait and go into a summary
    from the next sender."""
    await _capped_user(db, cap=1)
    spikes = await _spikes(db, NOW, ("SOL", "BTC", "ETH", "XRP"))
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, grace=0.2):
        await _send_one(db, spikes[0], clock)
        tg.hold_answers()
        for spike in spikes[1:]:
            await fan_out(db, spike.id, NOW)

        async def summary_on_the_wire() -> bool:
            return len(tg.calls_to("sendMessage", CHAT)) == 2

        await poll_until(summary_on_the_wire)
        await asyncio.sleep(0.2)  # the rows behind it are claimed and given back meanwhile
        assert len(tg.calls_to("sendMessage", CHAT)) == 2
    tg.release_answers()
    rows = await _rows(db)
    assert [(r["asset"], r["status"]) for r in rows] == [
        ("SOL", "sent"),
        ("BTC", "unknown"),
        ("ETH", "pending"),
        ("XRP", "pending"),
    ]
    async with running_sender(settings, db, tg, clock):
        await poll_until(lambda: _all_settled(db))
    sent = tg.calls_to("sendMessage", CHAT)
    assert len(sent) == 3  # the BTC summary once; a new summary for the rest (BTC's id is unknown)
    assert sum("BTC" in m.text for m in sent) == 1
    assert "Held back today: ETH 3.20×, XRP 3.30× (2)" in tg.calls_to("editMessageText", CHAT)[0].text
    rows = await _rows(db)
    assert [(r["asset"], r["status"], r["capped"]) for r in rows] == [
        ("SOL", "sent", False),
        ("BTC", "unknown", False),
        ("ETH", "sent", True),
        ("XRP", "sent", True),
    ]
    assert clock.now() - NOW < timedelta(minutes=1)


def test_the_summary_names_the_first_held_back_spikes_and_counts_them_all():
    held = [(f"A{i}", 3.0 + i / 100) for i in range(SHOWN + 5)]
    text = summary_text(10, held, SHOWN + 5, lambda msgid: msgid)
    assert text.splitlines()[0] == "Daily cap of 10 alerts reached."
    assert text.splitlines()[1].startswith("Held back today: A0 3.00×, A1 3.01×")
    assert f"A{SHOWN - 1} " in text and f"A{SHOWN} " not in text
    assert text.splitlines()[1].endswith(f" … ({SHOWN + 5})")
    assert CapDay(cap=3, sent=3).holds_back() and not CapDay(cap=3, sent=2).holds_back()
    assert valid_cap(None) and valid_cap(20) and not valid_cap(7) and not valid_cap(0)
