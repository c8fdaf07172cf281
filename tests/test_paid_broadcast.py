"""Paid broadcasts end to end: the real bot (`run_bot`: polling, delivery worker, sender, scheduler)
against the Telegram look-alike holding it to Telegram's broadcast limits, with PostgreSQL and Redis.

With TELEGRAM_PAID_BROADCAST elite alerts carry `allow_paid_broadcast` and go out faster than the
free 30 messages per second; without it the look-alike's 429 at the free limit is obeyed. The
Stars Telegram bills are read from its Star ledger and counted once, across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiogram.exceptions import TelegramRetryAfter
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from bot.app import build_bot, run_bot
from bot.payments.broadcast_fees import collect_fees
from core.clock import ManualClock
from core.redis_names import RedisNames
from core.settings import Settings
from db import broadcast_fees
from tests.bot_harness import ADMIN_ID, compile_catalogs
from tests.delivery_harness import add_alert, add_user, bot_settings, poll_until, publish, running_delivery
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_limits import FREE_PER_SECOND
from tests.fakes.telegram_payments import FakeStars

ELITE = list(range(3_100_001, 3_100_001 + 300))


@pytest.fixture
async def fees(db: asyncpg.Pool) -> asyncpg.Pool:
    """No fee and the ledger unread (the session's database is shared by every test)."""
    await db.execute("DELETE FROM paid_broadcast_fees")
    await db.execute("UPDATE paid_broadcast_cursor SET next_offset = 0")
    return db


def counted_stars() -> float:
    return REGISTRY.get_sample_value("volspike_paid_broadcast_stars_total") or 0.0


def counted_messages() -> float:
    return REGISTRY.get_sample_value("volspike_paid_broadcast_messages_total") or 0.0


@contextlib.asynccontextmanager
async def bot_service(
    config: Settings, pool: asyncpg.Pool, redis: Redis, clock: ManualClock, tg: FakeTelegram
) -> AsyncIterator[None]:
    """`run_bot` as the service runs it, until the block ends (then cancelled, as SIGTERM does)."""
    compile_catalogs()
    ledger_reads = len(tg.calls_to("getStarTransactions"))
    task = asyncio.create_task(run_bot(config, pool, redis, clock=clock))
    try:
        # Up: polling has started and the fee job has read the ledger once (it runs at start).
        await tg.wait_for_call("deleteWebhook")
        await tg.wait_for(lambda _: len(tg.calls_to("getStarTransactions")) > ledger_reads)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _fee_job_done(pool: asyncpg.Pool, since: datetime) -> bool:
    updated: datetime = await pool.fetchval("SELECT updated_at FROM paid_broadcast_cursor")
    return updated > since


async def _sent(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM deliveries WHERE status = 'sent'")
    return count


async def _stats(tg: FakeTelegram) -> str:
    before = len(tg.calls_to("sendMessage", ADMIN_ID))
    tg.push_message(ADMIN_ID, "/stats")
    replies = await tg.wait_for_call("sendMessage", ADMIN_ID, count=before + 1)
    return replies[-1].text


async def test_paid_broadcasts_go_past_the_free_limit_and_their_stars_are_counted_once_across_restarts(
    settings: Settings, fees: asyncpg.Pool, redis: Redis, names: RedisNames
):
    db = fees
    for user in ELITE:
        await add_user(db, user, tier="elite")
    clock = ManualClock(datetime.now(UTC))
    async with FakeTelegram() as tg:
        FakeStars(tg)
        limits = tg.enforce_limits()
        config = bot_settings(settings, tg, telegram_paid_broadcast=True, admin_ids=frozenset({ADMIN_ID}))
        stars_before, messages_before = counted_stars(), counted_messages()

        async with bot_service(config, db, redis, clock, tg):
            alert = await add_alert(db, clock.now())
            await publish(redis, names, alert)
            await poll_until(lambda: _all_sent(db, len(ELITE)), timeout=60)

        elite_calls = [c for c in tg.calls_to("sendMessage") if c.chat_id in ELITE]
        assert sorted(c.chat_id for c in elite_calls) == ELITE  # each exactly once, none refused
        assert {c.params.get("allow_paid_broadcast") for c in elite_calls} == {"true"}
        assert limits.refused == 0
        assert limits.peak > FREE_PER_SECOND  # faster than the free limit allows
        assert limits.billed > 0
        billed = limits.billed

        # Restart: the fee job reads what Telegram billed; /stats and the counters say the same.
        job_ran = await db.fetchval("SELECT updated_at FROM paid_broadcast_cursor")
        async with bot_service(config, db, redis, clock, tg):
            await poll_until(lambda: _fee_job_done(db, job_ran))
            stats = await _stats(tg)
        totals = await _totals(db)
        assert (totals.messages, totals.nanostars) == (billed, billed * 100_000_000)
        stars = f"{billed / 10:.1f}"
        assert (
            f"Paid broadcasts: {billed} messages billed, {stars} Stars today; "
            f"{billed} messages, {stars} Stars in all" in stats
        )
        assert counted_messages() - messages_before == billed
        assert counted_stars() - stars_before == pytest.approx(billed / 10)

        # Restart again, the cursor lost as well: the ledger is read from the start, nothing twice.
        await db.execute("UPDATE paid_broadcast_cursor SET next_offset = 0")
        job_ran = await db.fetchval("SELECT updated_at FROM paid_broadcast_cursor")
        async with bot_service(config, db, redis, clock, tg):
            await poll_until(lambda: _fee_job_done(db, job_ran))
            stats_again = await _stats(tg)
        assert await _totals(db) == totals
        assert f"{billed} messages, {stars} Stars in all" in stats_again
        assert counted_messages() - messages_before == billed
        assert limits.billed == billed


async def _all_sent(pool: asyncpg.Pool, count: int) -> bool:
    return await _sent(pool) == count


async def _totals(pool: asyncpg.Pool) -> broadcast_fees.Totals:
    async with pool.acquire() as conn:
        return await broadcast_fees.totals_since(conn)


async def test_without_paid_broadcasts_the_look_alikes_429_at_the_free_limit_is_obeyed(
    settings: Settings, fees: asyncpg.Pool, redis: Redis, names: RedisNames
):
    db = fees
    users = list(range(3_200_001, 3_200_001 + 90))
    for user in users:
        await add_user(db, user, tier="elite")
    clock = ManualClock(datetime.now(UTC))
    async with FakeTelegram() as tg:
        limits = tg.enforce_limits(retry_after=2)

        async def product_time() -> None:  # rows a 429 put back are due `retry_after` later
            while True:
                await asyncio.sleep(0.05)
                clock.advance(timedelta(seconds=1))

        ticking = asyncio.create_task(product_time())
        try:
            # Twice the free limit: the look-alike refuses what goes over it.
            async with running_delivery(settings, db, redis, tg, clock, telegram_global_rate=60) as delivery:
                await publish(redis, names, await add_alert(db, clock.now()))
                await poll_until(lambda: _all_sent(db, len(users)), timeout=90)
                await delivery.stop()
        finally:
            ticking.cancel()

    assert limits.refused > 0 and tg.rate_limited
    assert sorted(c.chat_id for c in tg.delivered) == users  # every user exactly once
    assert all("allow_paid_broadcast" not in c.params for c in tg.calls_to("sendMessage"))
    for refused in tg.rate_limited:
        later = [c for c in tg.calls_to("sendMessage", refused.chat_id) if c.at > refused.at]
        assert later, f"chat {refused.chat_id} was refused and never tried again"
        assert later[0].at - refused.at >= limits.retry_after - 0.05, "sent again before retry_after"


async def test_the_look_alike_refuses_over_either_limit_and_bills_paid_messages_over_the_free_amount(
    settings: Settings, fees: asyncpg.Pool
):
    async with FakeTelegram() as tg:
        FakeStars(tg)
        limits = tg.enforce_limits(free_per_second=2, paid_per_second=5, retry_after=7)
        bot = build_bot(bot_settings(settings, tg))
        try:
            await bot.send_message(1, "a")
            await bot.send_message(2, "b")
            with pytest.raises(TelegramRetryAfter) as refused:
                await bot.send_message(3, "c")  # the third free message within a second
            assert refused.value.retry_after == 7
            for chat in (4, 5, 6):  # paid: past the free amount (2 in the window), so billed
                await bot.send_message(chat, "paid", allow_paid_broadcast=True)
            with pytest.raises(TelegramRetryAfter):
                await bot.send_message(7, "paid", allow_paid_broadcast=True)  # the sixth in a second
            assert (limits.billed, limits.refused) == (3, 2)

            [fee] = [t for t in (await bot.get_star_transactions()).transactions if t.receiver is not None]
            assert fee.receiver is not None and fee.receiver.type == "telegram_api"
            assert (fee.amount, fee.nanostar_amount) == (0, 300_000_000)

            new = await collect_fees(fees, bot)
            assert (new.messages, new.nanostars) == (3, 300_000_000)
            again = await collect_fees(fees, bot)  # the same ledger read twice: nothing new
            assert (again.messages, again.nanostars) == (0, 0)
            assert await _totals(fees) == new
        finally:
            await bot.session.close()
