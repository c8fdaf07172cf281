"""The sender against the Telegram look-alike: limits, 429 storms, blocked chats, crashes, clean
shutdowns. Telegram's other fault answers are in test_sender_faults.py."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import asyncpg
from aiogram import Bot
from aiogram.methods import TelegramMethod

from bot.delivery.limiter import RateLimiter
from bot.delivery.sender import Sender
from core.clock import ManualClock
from core.settings import Settings
from tests.delivery_harness import add_alert, add_user, poll_until, statuses
from tests.fakes.telegram_api import FakeTelegram
from tests.sender_harness import NOW, counted, fan_out, running_sender


async def test_429s_from_several_chats_pause_all_sending_and_every_message_goes_out_once(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    users = list(range(201, 207))
    for user in users:
        await add_user(db, user)
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    clock = ManualClock(NOW)
    tg.rate_limit(1, count=3)  # three different chats within the window: the bot is being limited
    async with running_sender(settings, db, tg, clock) as sender:
        started: list[float] = []  # when the sender started each request (client side)

        async def record(make_request: Any, bot: Bot, method: TelegramMethod[Any]) -> Any:
            started.append(asyncio.get_running_loop().time())
            return await make_request(bot, method)

        sender.bot.session.middleware(record)
        await tg.wait_for_call("sendMessage", count=len(users))
        await poll_until(lambda: _count_status(db, "sent", len(users) - 3))
        # The three limited rows are due again after retry_after (product clock) and their chats
        # are paused for it (real time, Telegram's): once both have passed they go out.
        await poll_until(lambda: _no_pause(sender, users), timeout=5)
        clock.advance(timedelta(seconds=1))
        sender.wake()
        await poll_until(lambda: _statuses_are(db, {"sent"}), timeout=15)
        paused_at = sender.limiter.paused_until - 1.0  # when the third 429 paused everything
    calls = tg.calls_to("sendMessage")
    assert len(calls) == len(users) + 3  # three answered 429, then each user exactly once more
    assert paused_at >= calls[2].at  # the pause followed the third chat's 429
    inside = [t for t in started if paused_at < t < paused_at + 0.99]
    assert inside == [], "a request was started inside the global retry_after window"
    assert sorted(c.chat_id for c in tg.delivered) == users
    attempts = await db.fetch("SELECT attempts FROM deliveries")
    assert {row["attempts"] for row in attempts} == {1}  # a 429 does not use up an attempt


async def _count_status(db: asyncpg.Pool, status: str, count: int) -> bool:
    return list((await statuses(db)).values()).count(status) == count


async def _no_pause(sender: Sender, chats: list[int]) -> bool:
    limiter = sender.limiter
    return not limiter.paused_for and not any(limiter.chat_paused_for(chat) for chat in chats)


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


async def _row_is(db: asyncpg.Pool, chat_id: int, status: str) -> bool:
    return (await statuses(db)).get(chat_id) == status


async def test_rows_left_sending_by_a_crashed_process_become_unknown_and_are_never_sent(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    await add_user(db, 501)
    first = await add_alert(db, NOW)
    second = await add_alert(db, NOW, symbol="ETHUSDT", asset="ETH")
    await fan_out(db, first.id)
    await fan_out(db, second.id)
    # What a process killed with the first request open leaves behind: the row claimed, no outcome.
    await db.execute("UPDATE deliveries SET status = 'sending', attempts = 1 WHERE alert_id = $1", first.id)
    unknown_before = counted("unknown")
    async with running_sender(settings, db, tg, clock):
        await poll_until(lambda: _alert_row_is(db, second.id, "sent"))
    rows = {
        row["alert_id"]: (row["status"], row["error"])
        for row in await db.fetch("SELECT alert_id, status, error FROM deliveries")
    }
    assert rows == {first.id: ("unknown", "in flight during a crash"), second.id: ("sent", None)}
    texts = [c.text for c in tg.calls_to("sendMessage", 501)]
    assert len(texts) == 1 and "ETH" in texts[0]  # BTC is never sent: Telegram may have it
    assert counted("unknown") - unknown_before == 1


async def test_a_sibling_starting_leaves_the_rows_a_living_sender_has_in_flight(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    """Several bot processes (a rolling restart): the one that starts marks `unknown` only the rows
    of a process that died, never those a living sibling is sending right now."""
    clock = ManualClock(NOW)
    await add_user(db, 521)
    await add_user(db, 522)
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    # A process that died with a request open: its owner lock went with its session.
    await db.execute(
        "UPDATE deliveries SET status = 'sending', attempts = 1, claimed_by = 12345 WHERE chat_id = 522"
    )
    tg.hold_answers()  # the living sender's request is open
    unknown_before = counted("unknown")
    async with running_sender(settings, db, tg, clock) as living:
        await tg.wait_for_call("sendMessage", 521)
        assert living.owner is not None
        async with running_sender(settings, db, tg, clock) as sibling:
            assert await sibling.recover() == 0  # what its start did: nothing left to mark
            assert await statuses(db) == {521: "sending", 522: "unknown"}
            tg.release_answers()
            await poll_until(lambda: _row_is(db, 521, "sent"))
    assert counted("unknown") - unknown_before == 1  # the dead process's row only
    assert len(tg.delivered_to(521)) == 1 and tg.delivered_to(522) == []


async def test_a_clean_shutdown_finishes_open_requests_and_gives_back_the_queued_ones(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    users = list(range(801, 821))
    for user in users:
        await add_user(db, user)
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    tg.hold_answers()  # Telegram takes each message but has not answered yet
    returned_before = counted("returned")
    async with running_sender(settings, db, tg, clock, concurrency=20) as sender:
        await tg.wait_for_call("sendMessage", count=8)  # at 25 msg/s the rest wait in the limiter
        assert len(tg.calls_to("sendMessage")) < len(users)
        in_flight = {c.chat_id for c in tg.calls_to("sendMessage")}
        sender.task.cancel()  # SIGTERM
        await asyncio.sleep(0.1)  # the shutdown has begun while the requests are open
        tg.release_answers()  # ... and Telegram answers within the grace period
        await asyncio.wait({sender.task}, timeout=10)
    rows = {r["chat_id"]: r for r in await db.fetch("SELECT chat_id, status, attempts FROM deliveries")}
    assert {c for c, r in rows.items() if r["status"] == "sent"} == in_flight
    queued = {c for c, r in rows.items() if r["status"] == "pending"}
    assert queued == set(users) - in_flight
    assert all(rows[c]["attempts"] == 0 for c in queued)  # given back: no attempt used up
    assert counted("returned") - returned_before == len(queued)

    async with running_sender(settings, db, tg, clock):
        await poll_until(lambda: _statuses_are(db, {"sent"}), timeout=15)
    assert sorted(c.chat_id for c in tg.delivered) == users  # every user exactly once


async def test_a_request_still_open_when_the_grace_period_ends_is_unknown_and_never_resent(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    clock = ManualClock(NOW)
    await add_user(db, 851)
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    tg.hold_answers()
    async with running_sender(settings, db, tg, clock, grace=0.3):
        await tg.wait_for_call("sendMessage", 851)
    row = await db.fetchrow("SELECT status, error FROM deliveries")
    assert (row["status"], row["error"]) == ("unknown", "no answer within the shutdown grace period")
    tg.release_answers()
    async with running_sender(settings, db, tg, clock):
        await asyncio.sleep(0.3)  # several claim polls: nothing is due
    assert len(tg.delivered_to(851)) == 1


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


async def test_paid_messages_take_their_slots_from_the_paid_budget_and_obey_pauses():
    limiter = RateLimiter(5, paid_rate=1000)
    await asyncio.gather(*(limiter.acquire(chat, paid=True) for chat in range(50)))
    assert limiter.backlog == 0  # 50 paid messages left the free budget (5/s) untouched
    free = [asyncio.create_task(limiter.acquire(chat)) for chat in range(100, 103)]
    await asyncio.sleep(0)  # the three have taken their free slots, 200 ms apart
    assert limiter.backlog > 0.3
    await asyncio.gather(*free)
    loop = asyncio.get_running_loop()
    limiter.pause(0.3)
    started = loop.time()
    await limiter.acquire(200, paid=True)
    assert loop.time() - started >= 0.29


async def _claimed_not_sent_by_tier(pool: asyncpg.Pool, tg: FakeTelegram) -> dict[int, int]:
    """Rows `sending` in PostgreSQL whose message has not reached Telegram: what a crash now would
    turn `unknown` without their message ever having been sent."""
    rows = await pool.fetch("SELECT priority, chat_id FROM deliveries WHERE status = 'sending'")
    sent = {c.chat_id for c in tg.delivered}
    counts: dict[int, int] = {}
    for r in rows:
        if r["chat_id"] not in sent:
            counts[r["priority"]] = counts.get(r["priority"], 0) + 1
    return counts


async def test_with_paid_broadcasts_rows_on_the_free_budget_are_claimed_a_few_at_a_time_beside_elite(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    """Elite rows go out on the paid budget while pro rows trickle at the free rate: only about a
    quarter second of the free budget is ever claimed and not yet sent (a crash would make those
    rows unknown), and the pro rows do not hold back the elite ones."""
    elite, pro = list(range(4001, 4201)), list(range(4301, 4341))
    for user in elite:
        await add_user(db, user, tier="elite")
    for user in pro:
        await add_user(db, user, tier="pro")
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    clock = ManualClock(NOW + timedelta(minutes=5))  # the pro rows are due as well
    peaks: dict[int, int] = {}
    async with running_sender(settings, db, tg, clock, paid_broadcast=True) as sender:
        assert sender.rest_concurrency < sender.concurrency
        while len(tg.delivered) < len(elite) + len(pro):
            for priority, n in (await _claimed_not_sent_by_tier(db, tg)).items():
                peaks[priority] = max(peaks.get(priority, 0), n)
            await asyncio.sleep(0.01)
    assert 0 < peaks[1] <= sender.rest_concurrency  # pro: a few at a time
    assert peaks[0] > sender.rest_concurrency  # elite: many at once on the paid budget
    order = [c.chat_id for c in tg.delivered]
    assert sorted(order) == sorted(elite + pro)  # each exactly once
    last_elite = max(order.index(u) for u in elite)
    assert sum(1 for u in order[:last_elite] if u in pro) < len(pro) // 2  # elite did not wait for pro


async def test_with_paid_broadcasts_a_full_elite_queue_is_claimed_continuously_not_at_each_poll(
    settings: Settings, db: asyncpg.Pool, tg: FakeTelegram
):
    """The second lane (pro and free rows) being empty must not make the sender wait for the poll
    interval between two claims of a full elite queue: with a poll of a minute, 400 elite rows
    would then take minutes; claimed back to back they take about a second."""
    elite = list(range(4401, 4801))
    for user in elite:
        await add_user(db, user, tier="elite")
    alert = await add_alert(db, NOW)
    await fan_out(db, alert.id)
    clock = ManualClock(NOW)
    async with running_sender(settings, db, tg, clock, paid_broadcast=True, poll_interval=60.0):
        await poll_until(lambda: _statuses_are(db, {"sent"}), timeout=30)
    assert sorted(c.chat_id for c in tg.delivered) == elite
