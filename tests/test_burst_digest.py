"""The burst digest (core.digest) through the real sender, aiogram's HTTP session and the Telegram
look-alike: a chat's SPIKEs from the N-th within a minute on go out as ONE message, sent by the
first of them and edited by each later one; SPIKEs further apart stay messages of their own; an
update of a symbol that went out in the digest never edits the digest; a refused digest edit sends
a new digest listing the whole burst; a lost edit is `unknown` and never repeated."""

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

CHAT = 2301
ASSETS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "LINK")
DIGEST = {"digest_min_symbols": 4}


async def _spikes(db: asyncpg.Pool, apart: timedelta, count: int = len(ASSETS)) -> list[Alert]:
    """`count` SPIKEs of different symbols, `apart` from each other; the ratio falls with each."""
    alerts = []
    for i, asset in enumerate(ASSETS[:count]):
        alerts.append(
            await add_alert(
                db, NOW + i * apart, symbol=f"{asset}USDT", asset=asset, ratio=3.0 + count - i, current=5e9
            )
        )
    return alerts


async def _settled(db: asyncpg.Pool, alerts: list[Alert]) -> bool:
    statuses = await db.fetch(
        "SELECT status FROM deliveries WHERE alert_id = ANY($1::bigint[]) AND chat_id = $2",
        [a.id for a in alerts],
        CHAT,
    )
    return len(statuses) == len(alerts) and all(s["status"] not in ("pending", "sending") for s in statuses)


async def _rows(db: asyncpg.Pool, alerts: list[Alert]) -> list[asyncpg.Record]:
    rows = []
    for alert in alerts:
        row = await db.fetchrow(
            "SELECT status, message_id, edited, digest_since FROM deliveries WHERE alert_id = $1"
            " AND chat_id = $2",
            alert.id,
            CHAT,
        )
        assert row is not None
        rows.append(row)
    return rows


async def _one_by_one(db: asyncpg.Pool, alerts: list[Alert], clock: ManualClock) -> None:
    """Each SPIKE fanned out when it is detected and delivered before the next comes."""
    for alert in alerts:
        clock.set(alert.detected_at)
        await fan_out(db, alert.id, alert.detected_at)
        await poll_until(lambda alert=alert: _settled(db, [alert]))


async def _backlog(db: asyncpg.Pool, alerts: list[Alert], clock: ManualClock) -> None:
    """All the SPIKEs due when the sender looks (claimed in one batch)."""
    clock.set(alerts[-1].detected_at)
    for alert in alerts:
        await fan_out(db, alert.id, alert.detected_at)
    await poll_until(lambda: _settled(db, alerts))


def _listed(text: str) -> list[str]:
    return [line.split(" ", 1)[0] for line in text.splitlines()[1:]]


@pytest.mark.parametrize("arrival", [_one_by_one, _backlog], ids=["as they come", "claimed together"])
async def test_a_burst_of_seven_is_three_messages_and_one_digest_edited_three_times(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram, arrival: object
):
    await add_user(db, CHAT)
    alerts = await _spikes(db, timedelta(seconds=8))
    # XRP's hour is the most unusual of the 30 days: listed first, whatever its ratio.
    await db.execute("UPDATE alerts SET context = '{\"rankTopPercent\": 2.0}' WHERE asset = 'XRP'")
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, **DIGEST):
        await arrival(db, alerts, clock)  # type: ignore[operator]
    sends = tg.calls_to("sendMessage", CHAT)
    edits = tg.calls_to("editMessageText", CHAT)
    assert len(sends) == 4 and len(edits) == 3
    singles, digest = sends[:3], sends[3]
    assert sorted(s.text.split("<b>", 1)[1].split(" ", 1)[0] for s in singles) == ["BTC", "ETH", "SOL"]
    assert all("VOLUME SPIKE" in s.text for s in singles)
    assert digest.text.startswith("<b>4 symbols spiked within a minute</b>")
    assert _listed(digest.text) == ["XRP", "BTC", "ETH", "SOL"]
    assert all(e.params["message_id"] == str(digest.message_id) for e in edits)
    assert [e.text.splitlines()[0] for e in edits] == [
        f"<b>{n} symbols spiked within a minute</b>" for n in (5, 6, 7)
    ]
    assert digest.message_id is not None
    shown = tg.message(CHAT, digest.message_id)
    assert shown is not None and shown.text is not None and shown.edits == 3
    assert _listed(shown.text) == ["XRP", "BTC", "ETH", "SOL", "DOGE", "ADA", "LINK"]
    assert "XRP 7.00× prev · hourly volume $5.00B · top 2%" in shown.text
    assert "BTC 10.00× prev · hourly volume $5.00B · rank n/a" in shown.text
    rows = await _rows(db, alerts)
    assert [r["status"] for r in rows] == ["sent"] * 7
    assert [r["digest_since"] for r in rows[:3]] == [None] * 3
    assert {r["digest_since"] for r in rows[3:]} == {alerts[3].detected_at - timedelta(seconds=60)}
    assert [r["message_id"] for r in rows[3:]] == [digest.message_id] * 4
    assert [r["edited"] for r in rows[3:]] == [False, True, True, True]


async def test_spikes_two_minutes_apart_are_messages_of_their_own(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    await add_user(db, CHAT)
    alerts = await _spikes(db, timedelta(minutes=2), count=5)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, **DIGEST):
        await _one_by_one(db, alerts, clock)
    sends = tg.calls_to("sendMessage", CHAT)
    assert len(sends) == 5 and all("VOLUME SPIKE" in s.text for s in sends)
    assert not tg.calls_to("editMessageText", CHAT)
    assert all(r["digest_since"] is None for r in await _rows(db, alerts))


async def test_a_burst_goes_on_while_each_spike_comes_within_a_minute_of_the_previous(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    """Four within 30 s start the digest; three more 50 s apart each (the last 2.5 min after the
    first) still go into it: the window moves with the burst."""
    await add_user(db, CHAT)
    first = await _spikes(db, timedelta(seconds=10), count=4)
    later = []
    for i, asset in enumerate(("ADA", "LINK", "DOT")):
        detected = first[-1].detected_at + (i + 1) * timedelta(seconds=50)
        later.append(await add_alert(db, detected, symbol=f"{asset}USDT", asset=asset, ratio=3.5))
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, **DIGEST):
        await _one_by_one(db, [*first, *later], clock)
    sends = tg.calls_to("sendMessage", CHAT)
    assert len(sends) == 4 and len(tg.calls_to("editMessageText", CHAT)) == 3
    digest = sends[3]
    assert digest.message_id is not None
    shown = tg.message(CHAT, digest.message_id)
    assert shown is not None and shown.text is not None
    assert shown.text.startswith("<b>7 symbols spiked within a minute</b>")


async def test_with_the_digest_off_every_spike_is_a_message(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    await add_user(db, CHAT)
    alerts = await _spikes(db, timedelta(seconds=5))
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, digest_min_symbols=0):
        await _backlog(db, alerts, clock)
    assert len(tg.calls_to("sendMessage", CHAT)) == 7
    assert not tg.calls_to("editMessageText", CHAT)


@pytest.mark.parametrize("refusal", ["deleted", "not modified"])
async def test_a_refused_digest_edit_sends_a_new_digest_and_not_modified_is_a_success(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram, refusal: str
):
    await add_user(db, CHAT)
    alerts = await _spikes(db, timedelta(seconds=5), count=6)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, **DIGEST):
        await _one_by_one(db, alerts[:4], clock)
        digest = tg.calls_to("sendMessage", CHAT)[3]
        assert digest.message_id is not None
        if refusal == "deleted":
            tg.delete_message(CHAT, digest.message_id)
        else:
            tg.fail("editMessageText", 400, NOT_MODIFIED, chat_id=CHAT)
        await _one_by_one(db, alerts[4:], clock)
    sends = tg.calls_to("sendMessage", CHAT)
    rows = await _rows(db, alerts)
    if refusal == "deleted":
        # DOGE's edit was refused: a new digest listing the whole burst; ADA edits that one.
        assert len(sends) == 5 and len(tg.calls_to("editMessageText", CHAT)) == 2
        again = sends[4]
        assert again.text.startswith("<b>5 symbols spiked within a minute</b>")
        assert rows[4]["message_id"] == again.message_id and not rows[4]["edited"]
        assert rows[5]["message_id"] == again.message_id and rows[5]["edited"]
    else:
        assert len(sends) == 4 and len(tg.calls_to("editMessageText", CHAT)) == 2
        assert [r["message_id"] for r in rows[4:]] == [digest.message_id] * 2
    assert [r["status"] for r in rows] == ["sent"] * 6


async def test_a_digest_edit_whose_answer_is_lost_is_unknown_and_never_repeated(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    await add_user(db, CHAT)
    alerts = await _spikes(db, timedelta(seconds=5), count=5)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, **DIGEST) as sender:
        await _one_by_one(db, alerts[:4], clock)
        tg.reset_after_receipt(chat_id=CHAT, method="editMessageText")
        clock.set(alerts[4].detected_at)
        await fan_out(db, alerts[4].id, alerts[4].detected_at)
        await poll_until(lambda: _settled(db, alerts))
        clock.advance(timedelta(minutes=10))
        sender.wake()
    assert len(tg.calls_to("sendMessage", CHAT)) == 4
    assert len(tg.calls_to("editMessageText", CHAT)) == 1
    status = (await _rows(db, alerts))[4]["status"]
    assert status == "unknown"


async def test_an_update_of_a_symbol_in_the_digest_is_its_own_message(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    """The digest lists other symbols: a HALF-UPDATE never edits it with one symbol's text."""
    await add_user(db, CHAT)
    alerts = await _spikes(db, timedelta(seconds=5), count=4)
    doge_half = await add_alert(
        db,
        NOW.replace(minute=30, second=0),
        symbol="XRPUSDT",
        asset="XRP",
        alert_type=AlertType.HALF_UPDATE,
        current=6e9,
        ratio=4.0,
    )
    btc_half = await add_alert(
        db, NOW.replace(minute=30, second=1), alert_type=AlertType.HALF_UPDATE, current=6e9, ratio=4.0
    )
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, **DIGEST):
        await _one_by_one(db, alerts, clock)
        await _one_by_one(db, [doge_half, btc_half], clock)
    sends = tg.calls_to("sendMessage", CHAT)
    edits = tg.calls_to("editMessageText", CHAT)
    assert len(sends) == 5
    assert "HALF-UPDATE — half-hour: XRP" in sends[4].text
    # BTC went out on its own: its HALF edits that message, as before.
    [edit] = edits
    assert edit.params["message_id"] == str(sends[0].message_id) and "HALF-UPDATE" in edit.text
    digest = tg.message(CHAT, sends[3].message_id or 0)
    assert digest is not None and digest.edits == 0


async def test_when_the_digest_itself_is_lost_the_rest_of_the_burst_starts_no_second_digest(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    """The digest's first message may have reached the chat (its answer lost): the burst's later
    SPIKEs go out as messages of their own, never as a second digest listing the same symbols."""
    await add_user(db, CHAT)
    alerts = await _spikes(db, timedelta(seconds=5), count=6)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, **DIGEST):
        await _one_by_one(db, alerts[:3], clock)
        tg.reset_after_receipt(chat_id=CHAT, method="sendMessage")
        await _one_by_one(db, alerts[3:], clock)
    sends = tg.calls_to("sendMessage", CHAT)
    assert not tg.calls_to("editMessageText", CHAT)
    digests = [s for s in sends if "spiked within a minute" in s.text]
    assert len(digests) == 1 and len(sends) == 6
    assert all("VOLUME SPIKE" in s.text for s in sends[4:])
    rows = await _rows(db, alerts)
    assert [r["status"] for r in rows] == ["sent"] * 3 + ["unknown"] + ["sent"] * 2
    assert rows[3]["digest_since"] is not None  # marked before the request: known as the digest's
    assert [r["digest_since"] for r in rows[4:]] == [None, None]


async def test_a_burst_claimed_together_goes_out_one_row_after_another_without_waiting_for_polls(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    """The burst's rows wait for each other; each written outcome lets the next go at once: with
    a 30 s poll the seven are out within seconds, not four polls (two minutes)."""
    await add_user(db, CHAT)
    alerts = await _spikes(db, timedelta(seconds=3))
    clock = ManualClock(alerts[-1].detected_at)
    async with running_sender(settings, db, tg, clock, poll_interval=30.0, **DIGEST) as sender:
        for alert in alerts:
            await fan_out(db, alert.id, alert.detected_at)
        sender.wake()
        await poll_until(lambda: _settled(db, alerts), timeout=15.0)
    assert len(tg.calls_to("sendMessage", CHAT)) == 4
    assert len(tg.calls_to("editMessageText", CHAT)) == 3


async def test_the_daily_cap_comes_first_a_held_back_spike_never_goes_into_a_digest(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    """Cap 5, a burst of 7: three messages, the fourth and fifth SPIKE in the digest (each counts
    toward the cap like a message), then the cap holds the last two back into its summary."""
    await add_user(db, CHAT)
    await db.execute("UPDATE user_settings SET daily_cap = 5 WHERE user_id = $1", CHAT)
    alerts = await _spikes(db, timedelta(seconds=5))
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, **DIGEST):
        await _one_by_one(db, alerts, clock)
    sends = tg.calls_to("sendMessage", CHAT)
    assert len(sends) == 5
    digest, summary = sends[3], sends[4]
    assert digest.text.startswith("<b>4 symbols spiked within a minute</b>")
    assert "Daily cap of 5 alerts reached." in summary.text
    edits = tg.calls_to("editMessageText", CHAT)
    assert [e.params["message_id"] for e in edits] == [str(digest.message_id), str(summary.message_id)]
    shown = tg.message(CHAT, digest.message_id or 0)
    assert shown is not None and shown.text is not None
    assert _listed(shown.text) == ["BTC", "ETH", "SOL", "XRP", "DOGE"]
    rows = await db.fetch("SELECT capped, digest_since FROM deliveries WHERE chat_id = $1 ORDER BY id", CHAT)
    assert [(r["capped"], r["digest_since"] is not None) for r in rows] == [(False, False)] * 3 + [
        (False, True)
    ] * 2 + [(True, False)] * 2
