"""The tier lifecycle: expiry to free, the 3-day and 1-day reminders (each once), the advisory lock
that lets one scheduler run a job, the tier history of admin grants, and `/api/me`'s plan fields.
Time moves by the controllable clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.i18n import create_i18n
from bot.payments.lifecycle import due_reminders, run_lifecycle
from bot.payments.scheduler import ExclusiveJob, build_scheduler
from core.clock import ManualClock
from core.plans import PERIOD, Kind
from core.settings import Settings
from db import subscriptions as subscriptions_db
from tests.bot_harness import ADMIN_ID
from tests.stars_harness import PRO_PRICE, StarsBot, stars_bot

USER = 7170
NOW = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def sb(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[StarsBot]:
    async with stars_bot(settings, db, redis, clock=ManualClock(NOW)) as running:
        await running.app.add_user(USER)
        await running.app.add_user(ADMIN_ID)
        yield running


async def lifecycle(sb: StarsBot):
    return await run_lifecycle(sb.app.pool, sb.app.bot, create_i18n(), sb.app.clock.now())


async def test_an_expired_tier_goes_back_to_free_and_the_user_is_told(sb: StarsBot):
    await sb.app.pool.execute(
        "UPDATE users SET tier = 'elite', tier_expires_at = $2 WHERE id = $1", USER, NOW + timedelta(hours=1)
    )
    assert (await lifecycle(sb)).downgraded == 0
    sb.app.clock.advance(timedelta(hours=2))
    assert (await lifecycle(sb)).downgraded == 1
    row = await sb.user(USER)
    assert row["tier"] == "free" and row["tier_expires_at"] is None
    assert await sb.history(USER) == ["expiry"]
    assert sb.app.tg.sent_texts(USER) == [
        "Your Elite plan ends on 2026-04-01 10:00 UTC and will not renew. Send /subscribe to keep it.",
        "Your Elite plan has ended and you are on the free plan now. Send /subscribe to continue.",
    ]
    assert (await lifecycle(sb)).downgraded == 0
    assert len(sb.app.tg.sent_texts(USER)) == 2


async def test_a_renewing_subscription_gets_grace_before_it_is_downgraded(sb: StarsBot):
    end = NOW + timedelta(days=1)
    charge = sb.stars.charge(
        USER, sb.payload(USER, kind=Kind.SUBSCRIPTION), PRO_PRICE, subscription_period=2592000
    )
    await sb.feed(
        sb.stars.successful_payment_update(
            charge, subscription_expiration_date=int(end.timestamp()), is_recurring=True
        )
    )
    sb.app.clock.set(end + timedelta(hours=1))
    assert (await lifecycle(sb)).downgraded == 0  # the renewal may still arrive
    sb.app.clock.set(end + timedelta(hours=7))
    assert (await lifecycle(sb)).downgraded == 1
    assert (await sb.user(USER))["tier"] == "free"


async def test_reminders_go_three_days_and_one_day_before_an_expiry_that_will_not_renew(sb: StarsBot):
    expires = NOW + timedelta(days=5)
    await sb.app.pool.execute(
        "UPDATE users SET tier = 'pro', tier_expires_at = $2 WHERE id = $1", USER, expires
    )
    assert (await lifecycle(sb)).reminded == 0
    sb.app.clock.set(expires - timedelta(days=3) + timedelta(minutes=1))
    assert (await lifecycle(sb)).reminded == 1
    assert (await lifecycle(sb)).reminded == 0
    sb.app.clock.set(expires - timedelta(hours=23))
    assert (await lifecycle(sb)).reminded == 1
    sb.app.clock.advance(timedelta(hours=1))
    assert (await lifecycle(sb)).reminded == 0
    text = (
        f"Your Pro plan ends on {expires:%Y-%m-%d %H:%M} UTC and will not renew. Send /subscribe to keep it."
    )
    assert sb.app.tg.sent_texts(USER) == [text, text]
    days = await sb.app.pool.fetch(
        "SELECT days_before FROM expiry_reminders WHERE user_id = $1 ORDER BY 1", USER
    )
    assert [r["days_before"] for r in days] == [1, 3]


async def test_a_renewing_subscription_gets_no_reminder(sb: StarsBot):
    end = NOW + timedelta(days=2)
    charge = sb.stars.charge(
        USER, sb.payload(USER, kind=Kind.SUBSCRIPTION), PRO_PRICE, subscription_period=2592000
    )
    await sb.feed(
        sb.stars.successful_payment_update(
            charge, subscription_expiration_date=int(end.timestamp()), is_recurring=True
        )
    )
    assert (await lifecycle(sb)).reminded == 0
    await subscriptions_db.set_renews(sb.app.pool, USER, "stars", False)  # the user cancelled
    assert (await lifecycle(sb)).reminded == 1


async def test_a_reminder_is_sent_in_the_users_language(sb: StarsBot):
    await sb.app.pool.execute(
        "UPDATE users SET tier = 'pro', tier_expires_at = $2, language = 'es' WHERE id = $1",
        USER,
        NOW + timedelta(hours=5),
    )
    await lifecycle(sb)
    [text] = sb.app.tg.sent_texts(USER)
    assert text.startswith("Tu plan Pro termina el")


async def test_two_schedulers_run_a_locked_job_in_one_of_them_only(pool: asyncpg.Pool):
    started = asyncio.Event()
    release = asyncio.Event()
    ran: list[str] = []

    def job(name: str):
        async def body() -> None:
            ran.append(name)
            started.set()
            await release.wait()

        return body

    key = 0x7E57_0000 + 1
    jobs = [ExclusiveJob(pool, key, f"job-{n}", job(f"s{n}")) for n in (1, 2)]
    idle = [ExclusiveJob(pool, key + 1, f"idle-{n}", job("idle")) for n in (1, 2)]
    schedulers = [build_scheduler(jobs[n], idle[n]) for n in (0, 1)]
    for scheduler in schedulers:
        scheduler.start()
    try:
        await asyncio.wait_for(started.wait(), 10)
        deadline = asyncio.get_running_loop().time() + 10
        while sum(j.skips for j in jobs) < 1:
            assert asyncio.get_running_loop().time() < deadline, "the second scheduler never tried"
            await asyncio.sleep(0.01)
        assert len(ran) == 1 and sum(j.runs for j in jobs) == 1
        release.set()
        # Released when the job ends: the next run, in either process, takes the lock again.
        while not await jobs[1].run():
            assert asyncio.get_running_loop().time() < deadline, "the lock was never released"
            await asyncio.sleep(0.01)
        assert len(ran) == 2
    finally:
        release.set()
        for scheduler in schedulers:
            scheduler.shutdown(wait=False)


async def test_admin_grant_and_revoke_go_through_the_tier_history(sb: StarsBot):
    await sb.app.send(ADMIN_ID, f"/grant {USER} elite 10")
    await sb.app.send(ADMIN_ID, f"/revoke {USER}")
    rows = await sb.app.pool.fetch(
        "SELECT tier_before, tier_after, expires_after, cause, admin_id FROM tier_history"
        " WHERE user_id = $1 ORDER BY id",
        USER,
    )
    assert [(r["tier_before"], r["tier_after"], r["cause"], r["admin_id"]) for r in rows] == [
        ("free", "elite", "admin_grant", ADMIN_ID),
        ("elite", "free", "admin_revoke", ADMIN_ID),
    ]
    assert rows[0]["expires_after"] == NOW + timedelta(days=10)


async def test_me_fields_say_tier_expiry_renewal_and_provider(sb: StarsBot):
    pool = sb.app.pool
    assert await subscriptions_db.me_fields(pool, USER, NOW) == {
        "id": USER,
        "tier": "free",
        "tierExpiresAt": None,
        "language": "en",
        "renews": False,
        "provider": None,
    }
    end = NOW + PERIOD
    charge = sb.stars.charge(
        USER, sb.payload(USER, kind=Kind.SUBSCRIPTION), PRO_PRICE, subscription_period=2592000
    )
    await sb.feed(
        sb.stars.successful_payment_update(
            charge, subscription_expiration_date=int(end.timestamp()), is_recurring=True
        )
    )
    fields = await subscriptions_db.me_fields(pool, USER, NOW)
    assert fields is not None
    assert (fields["tier"], fields["renews"], fields["provider"]) == ("pro", True, "stars")
    assert fields["tierExpiresAt"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
    await sb.app.send(ADMIN_ID, f"/grant {USER} elite")
    fields = await subscriptions_db.me_fields(pool, USER, NOW)
    assert fields is not None and fields["tier"] == "elite" and fields["renews"] is False
    assert fields["provider"] == "admin"
    assert fields["tierExpiresAt"] is None
    assert (await subscriptions_db.me_fields(pool, USER, NOW + 2 * PERIOD) or {})["tier"] == "elite"
    assert await subscriptions_db.me_fields(pool, 1, NOW) is None


def test_reminder_rule_sends_the_most_urgent_once():
    expires = NOW + timedelta(days=10)
    assert due_reminders(expires, NOW, frozenset()) == (None, [])
    assert due_reminders(expires, expires - timedelta(days=2), frozenset()) == (3, [3])
    assert due_reminders(expires, expires - timedelta(hours=5), frozenset()) == (1, [3, 1])
    assert due_reminders(expires, expires - timedelta(hours=5), frozenset({3})) == (1, [1])
    assert due_reminders(expires, expires - timedelta(hours=5), frozenset({3, 1})) == (None, [])
