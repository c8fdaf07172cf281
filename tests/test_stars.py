"""Telegram Stars end to end: the real Dispatcher and aiogram Bot against the Telegram look-alike
(tests/fakes/telegram_payments.py), with the session's real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.i18n import create_i18n
from bot.payments.reconcile import reconcile
from bot.payments.scheduler import build_jobs, catch_up, run_scheduler
from core.clock import ManualClock
from core.plans import PERIOD, Kind
from core.settings import Settings
from core.tiers import Tier
from tests.bot_harness import ADMIN_ID
from tests.stars_harness import ELITE_PRICE, PRO_PRICE, StarsBot, stars_bot

USER = 5150
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sb(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[StarsBot]:
    async with stars_bot(settings, db, redis, clock=ManualClock(NOW)) as running:
        await running.app.add_user(USER)
        await running.app.add_user(ADMIN_ID)
        yield running


def answers(sb: StarsBot) -> list[dict[str, object]]:
    return [c.params for c in sb.app.tg.calls_to("answerPreCheckoutQuery")]


async def test_subscribe_offers_a_monthly_stars_subscription_link_and_a_pass_per_paid_tier(sb: StarsBot):
    [reply] = await sb.app.send(USER, "/subscribe")
    assert "Pro — 250 ⭐ per 30 days" in reply.text and "Elite — 750 ⭐ per 30 days" in reply.text
    assert "You have: Free" in reply.text
    links = sb.app.tg.calls_to("createInvoiceLink")
    assert len(links) == 2
    for call, price in zip(links, (PRO_PRICE, ELITE_PRICE), strict=True):
        assert call.params["currency"] == "XTR"
        assert call.params.get("provider_token", "") == ""
        assert int(call.params["subscription_period"]) == 2592000
        assert [p["amount"] for p in call.params["prices"]] == [price]
        assert call.params["payload"].startswith("v1:subscription:")
        assert call.params["payload"].endswith(f":{price}:{USER}")
    buttons = [b for row in reply.params["reply_markup"]["inline_keyboard"] for b in row]
    assert [b["url"] for b in buttons if "url" in b] == ["https://t.me/$inv1", "https://t.me/$inv2"]
    assert [b["callback_data"] for b in buttons if "callback_data" in b] == ["pass:pro", "pass:elite"]


async def test_pass_button_sends_a_stars_invoice_in_the_chat(sb: StarsBot):
    await sb.app.press(USER, "pass:elite")
    [call] = sb.app.tg.calls_to("sendInvoice", USER)
    assert call.params["currency"] == "XTR"
    assert call.params["prices"] == [{"label": "VolSpike Elite — 30-day pass", "amount": ELITE_PRICE}]
    assert call.params["payload"] == f"v1:pass:elite:{ELITE_PRICE}:{USER}"
    assert "subscription_period" not in call.params


async def test_pre_checkout_with_the_current_price_is_accepted(sb: StarsBot):
    await sb.feed(sb.stars.pre_checkout_update(USER, sb.payload(USER), PRO_PRICE))
    [answer] = answers(sb)
    assert answer["ok"] in (True, "true") and "error_message" not in answer


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong_price", "The price of this plan has changed"),
        ("unknown_plan", "This plan is not on sale"),
        ("banned", "Your access to VolSpike has been suspended, so this payment cannot be accepted."),
        ("other_user", "This invoice was made for another account"),
    ],
)
async def test_pre_checkout_is_refused_with_a_clear_reason(sb: StarsBot, case: str, reason: str):
    payload, amount, payer = sb.payload(USER), PRO_PRICE, USER
    if case == "wrong_price":
        payload, amount = sb.payload(USER, price=100), 100
    elif case == "unknown_plan":
        payload = f"v1:pass:gold:{PRO_PRICE}:{USER}"
    elif case == "banned":
        await sb.app.pool.execute("UPDATE users SET banned = true WHERE id = $1", USER)
    else:
        payer = USER + 1
    await sb.feed(sb.stars.pre_checkout_update(payer, payload, amount))
    [answer] = answers(sb)
    assert answer["ok"] in (False, "false")
    assert reason in str(answer["error_message"])


async def test_pre_checkout_refusal_is_in_the_users_language(sb: StarsBot):
    await sb.app.pool.execute("UPDATE users SET language = 'ru' WHERE id = $1", USER)
    await sb.feed(sb.stars.pre_checkout_update(USER, sb.payload(USER, price=1), 1))
    [answer] = answers(sb)
    assert "цена" in str(answer["error_message"]).lower()


async def test_a_pass_extends_the_tier_by_30_days_and_the_payment_is_recorded(sb: StarsBot):
    charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
    await sb.feed(sb.stars.successful_payment_update(charge))
    row = await sb.user(USER)
    assert row["tier"] == "pro" and row["tier_expires_at"] == NOW + PERIOD
    [payment] = await sb.payments(USER)
    assert (payment["provider"], payment["provider_charge_id"], payment["amount"]) == (
        "stars",
        charge.charge_id,
        250,
    )
    assert (payment["kind"], payment["status"], payment["source"]) == ("pass", "paid", "update")
    assert await sb.history(USER) == ["stars_payment"]
    [thanks] = sb.app.tg.sent_texts(USER)
    assert thanks == f"Thank you! You have Pro until {NOW + PERIOD:%Y-%m-%d %H:%M} UTC."


async def test_a_second_pass_extends_from_the_current_expiry(sb: StarsBot):
    for _ in range(2):
        charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
        await sb.feed(sb.stars.successful_payment_update(charge))
    assert (await sb.user(USER))["tier_expires_at"] == NOW + 2 * PERIOD


async def test_the_same_payment_update_twice_changes_nothing_the_second_time(sb: StarsBot):
    charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
    update = sb.stars.successful_payment_update(charge)
    await sb.feed(update)
    await sb.feed(update)
    assert len(await sb.payments(USER)) == 1
    assert (await sb.user(USER))["tier_expires_at"] == NOW + PERIOD
    assert await sb.history(USER) == ["stars_payment"]
    assert len(sb.app.tg.sent_texts(USER)) == 1


async def test_the_same_payment_update_twice_at_once_is_recorded_once(sb: StarsBot):
    charge = sb.stars.charge(USER, sb.payload(USER, Tier.ELITE), ELITE_PRICE)
    update = sb.stars.successful_payment_update(charge)
    await asyncio.gather(sb.feed(update), sb.feed(update))
    assert len(await sb.payments(USER)) == 1
    row = await sb.user(USER)
    assert row["tier"] == "elite" and row["tier_expires_at"] == NOW + PERIOD
    assert await sb.history(USER) == ["stars_payment"]


async def test_a_subscription_runs_to_its_expiration_date_and_a_renewal_extends_it(sb: StarsBot):
    payload = sb.payload(USER, kind=Kind.SUBSCRIPTION)
    first = sb.stars.charge(USER, payload, PRO_PRICE, subscription_period=2592000)
    end1 = NOW + timedelta(days=30, minutes=3)
    await sb.feed(
        sb.stars.successful_payment_update(
            first,
            subscription_expiration_date=int(end1.timestamp()),
            is_recurring=True,
            is_first_recurring=True,
        )
    )
    assert (await sb.user(USER))["tier_expires_at"] == end1
    renewal = sb.stars.charge(USER, payload, PRO_PRICE, subscription_period=2592000)
    end2 = end1 + PERIOD
    await sb.feed(
        sb.stars.successful_payment_update(
            renewal,
            subscription_expiration_date=int(end2.timestamp()),
            is_recurring=True,
            is_first_recurring=False,
        )
    )
    row = await sb.user(USER)
    assert row["tier"] == "pro" and row["tier_expires_at"] == end2
    subscription = await sb.app.pool.fetchrow("SELECT * FROM subscriptions WHERE user_id = $1", USER)
    assert subscription["external_id"] == first.charge_id and subscription["renews"]
    assert subscription["period_end"] == end2
    assert [p["is_recurring"] for p in await sb.payments(USER)] == [False, True]
    assert await sb.history(USER) == ["stars_payment", "stars_payment"]


async def test_subscription_renewal_can_be_cancelled_and_re_enabled(sb: StarsBot):
    payload = sb.payload(USER, kind=Kind.SUBSCRIPTION)
    first = sb.stars.charge(USER, payload, PRO_PRICE, subscription_period=2592000)
    end = NOW + PERIOD
    await sb.feed(
        sb.stars.successful_payment_update(
            first,
            subscription_expiration_date=int(end.timestamp()),
            is_recurring=True,
            is_first_recurring=True,
        )
    )
    [shown] = await sb.app.send(USER, "/subscription")
    assert f"Renews on {end:%Y-%m-%d %H:%M} UTC" in shown.text
    assert shown.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "sub:cancel"

    toast = await sb.app.press(USER, "sub:cancel")
    assert toast.params["text"] == "Renewal cancelled."
    [edit] = sb.app.tg.calls_to("editUserStarSubscription")
    assert edit.params["telegram_payment_charge_id"] == first.charge_id
    assert str(edit.params["is_canceled"]).lower() == "true" and int(edit.params["user_id"]) == USER
    assert sb.stars.charges[first.charge_id].canceled
    assert not await sb.app.pool.fetchval("SELECT renews FROM subscriptions WHERE user_id = $1", USER)
    [edited] = sb.app.tg.calls_to("editMessageText", USER)
    assert "it does not renew" in edited.text

    toast = await sb.app.press(USER, "sub:resume")
    assert toast.params["text"] == "Renewal re-enabled."
    assert str(sb.app.tg.calls_to("editUserStarSubscription")[-1].params["is_canceled"]).lower() == "false"
    assert not sb.stars.charges[first.charge_id].canceled
    assert await sb.app.pool.fetchval("SELECT renews FROM subscriptions WHERE user_id = $1", USER)


async def test_admin_refund_calls_telegram_and_restores_the_tier_before_the_payment(sb: StarsBot):
    before = NOW + timedelta(days=5)
    await sb.app.pool.execute(
        "UPDATE users SET tier = 'pro', tier_expires_at = $2 WHERE id = $1", USER, before
    )
    charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
    await sb.feed(sb.stars.successful_payment_update(charge))
    assert (await sb.user(USER))["tier_expires_at"] == before + PERIOD

    [reply] = await sb.app.send(ADMIN_ID, f"/refund {charge.charge_id}")
    assert reply.text == f"Refunded 250 ⭐ to user {USER}; their plan is now Pro."
    [call] = sb.app.tg.calls_to("refundStarPayment")
    assert (
        call.params["telegram_payment_charge_id"] == charge.charge_id and int(call.params["user_id"]) == USER
    )
    row = await sb.user(USER)
    assert row["tier"] == "pro" and row["tier_expires_at"] == before
    [payment] = await sb.payments(USER)
    assert payment["status"] == "refunded" and payment["refunded_at"] == NOW
    assert await sb.history(USER) == ["stars_payment", "refund"]

    # The refunded_payment message Telegram sends afterwards changes nothing more.
    await sb.feed(sb.stars.refunded_payment_update(charge))
    assert (await sb.user(USER))["tier_expires_at"] == before
    assert await sb.history(USER) == ["stars_payment", "refund"]

    [again] = await sb.app.send(ADMIN_ID, f"/refund {charge.charge_id}")
    assert again.text == "That payment is already refunded."


async def test_refund_of_an_unknown_charge_is_refused_and_non_admins_cannot_refund(sb: StarsBot):
    [reply] = await sb.app.send(ADMIN_ID, "/refund nope")
    assert reply.text == "No Stars payment with charge id nope."
    [reply] = await sb.app.send(ADMIN_ID, "/refund")
    assert reply.text == "Usage: /refund &lt;charge_id&gt;"
    [reply] = await sb.app.send(USER, "/refund x")
    assert "I don't know that command" in reply.text
    assert sb.app.tg.calls_to("refundStarPayment") == []


async def test_a_refund_telegram_made_is_recorded_and_the_user_goes_back_to_free(sb: StarsBot):
    charge = sb.stars.charge(USER, sb.payload(USER, Tier.ELITE), ELITE_PRICE)
    await sb.feed(sb.stars.successful_payment_update(charge))
    assert (await sb.user(USER))["tier"] == "elite"
    update = sb.stars.refunded_payment_update(charge)
    await sb.feed(update)
    await sb.feed(update)
    row = await sb.user(USER)
    assert row["tier"] == "free" and row["tier_expires_at"] is None
    assert await sb.history(USER) == ["stars_payment", "refund"]
    assert sb.app.tg.sent_texts(USER)[-1] == "Your payment was refunded. Your plan is now Free."


async def test_a_payment_from_a_banned_user_is_still_recorded(sb: StarsBot):
    await sb.app.pool.execute("UPDATE users SET banned = true WHERE id = $1", USER)
    charge = sb.stars.charge(
        USER, sb.payload(USER, kind=Kind.SUBSCRIPTION), PRO_PRICE, subscription_period=2592000
    )
    end = NOW + PERIOD
    await sb.feed(
        sb.stars.successful_payment_update(charge, subscription_expiration_date=int(end.timestamp()))
    )
    assert len(await sb.payments(USER)) == 1


async def test_reconciliation_records_a_payment_whose_update_never_arrived_and_tells_the_admins(sb: StarsBot):
    newcomer = 6160  # never wrote to the bot; their update was lost
    charge = sb.stars.charge(newcomer, sb.payload(newcomer), PRO_PRICE)
    seen = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
    await sb.feed(sb.stars.successful_payment_update(seen))
    i18n = create_i18n()

    report = await reconcile(sb.app.pool, sb.app.bot, sb.app.settings, i18n, NOW)
    assert [p.charge_id for p in report.payments] == [charge.charge_id]
    [payment] = await sb.payments(newcomer)
    assert payment["source"] == "reconciliation" and payment["provider_charge_id"] == charge.charge_id
    row = await sb.user(newcomer)
    assert row["tier"] == "pro" and row["tier_expires_at"] == NOW + PERIOD
    [notice] = sb.app.tg.sent_texts(ADMIN_ID)
    assert "never received" in notice and charge.charge_id in notice and str(newcomer) in notice

    again = await reconcile(sb.app.pool, sb.app.bot, sb.app.settings, i18n, NOW)
    assert again.payments == [] and again.refunds == []
    assert len(sb.app.tg.sent_texts(ADMIN_ID)) == 1
    assert len(await sb.payments(USER)) == 1


async def test_reconciliation_records_a_refund_whose_update_never_arrived(sb: StarsBot):
    charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
    await sb.feed(sb.stars.successful_payment_update(charge))
    sb.stars._ledger_refund(charge)  # Telegram refunded it; the refunded_payment update was lost
    report = await reconcile(sb.app.pool, sb.app.bot, sb.app.settings, create_i18n(), NOW)
    assert [r.charge_id for r in report.refunds] == [charge.charge_id]
    assert (await sb.user(USER))["tier"] == "free"
    assert (await sb.payments(USER))[0]["status"] == "refunded"


async def test_paysupport_and_terms_answer(sb: StarsBot):
    [support] = await sb.app.send(USER, "/paysupport")
    assert "Payment support" in support.text and "Telegram support cannot help" in support.text
    [terms] = await sb.app.send(USER, "/terms")
    assert "Terms" in terms.text and "30-day pass" in terms.text


async def test_a_payment_is_recorded_even_when_the_user_is_over_the_flood_limit(sb: StarsBot):
    bucket = sb.app.names.throttle(USER)
    redis_now = (await sb.app.redis.time())[0]
    await sb.app.redis.hset(bucket, mapping={"tokens": 0, "at": redis_now, "told": 1})
    await sb.app.redis.expire(bucket, 60)
    charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
    await sb.feed(sb.stars.successful_payment_update(charge))
    assert len(await sb.payments(USER)) == 1
    await sb.feed(sb.stars.pre_checkout_update(USER, sb.payload(USER), PRO_PRICE))
    assert len(answers(sb)) == 1


async def test_a_paid_invoice_this_bot_did_not_make_is_reported_to_the_admins(sb: StarsBot):
    charge = sb.stars.charge(USER, "someone-elses-payload", 99)
    await sb.feed(sb.stars.successful_payment_update(charge))
    assert await sb.payments(USER) == []
    [notice] = sb.app.tg.sent_texts(ADMIN_ID)
    assert notice == f"A Stars payment could not be recorded: user {USER}, 99 ⭐, charge {charge.charge_id}."


async def test_subscription_shows_free_and_pass_plans_without_a_renewal_button(sb: StarsBot):
    [free] = await sb.app.send(USER, "/subscription")
    assert "Your plan: Free" in free.text and "Upgrade with /subscribe." in free.text
    assert "reply_markup" not in free.params
    charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
    await sb.feed(sb.stars.successful_payment_update(charge))
    [paid] = await sb.app.send(USER, "/subscription")
    assert f"Ends on {NOW + PERIOD:%Y-%m-%d %H:%M} UTC; it does not renew." in paid.text
    assert "Extend it with /subscribe." in paid.text and "reply_markup" not in paid.params


async def test_a_refunded_subscription_payment_stops_the_renewal(sb: StarsBot):
    payload = sb.payload(USER, kind=Kind.SUBSCRIPTION)
    first = sb.stars.charge(USER, payload, PRO_PRICE, subscription_period=2592000)
    end = NOW + PERIOD
    await sb.feed(
        sb.stars.successful_payment_update(
            first,
            subscription_expiration_date=int(end.timestamp()),
            is_recurring=True,
            is_first_recurring=True,
        )
    )
    await sb.feed(sb.stars.refunded_payment_update(first))
    assert (await sb.user(USER))["tier"] == "free"
    assert not await sb.app.pool.fetchval("SELECT renews FROM subscriptions WHERE user_id = $1", USER)


async def _set_last_reconciliation(pool: asyncpg.Pool, at: datetime) -> None:
    await pool.execute("UPDATE star_reconciliation SET last_run_at = $1", at)


async def test_a_reconciliation_missed_while_the_bot_was_down_runs_at_start(sb: StarsBot):
    """The bot was down at 03:17 UTC yesterday: the lost payment is found when it starts again,
    not a day later."""
    await _set_last_reconciliation(sb.app.pool, NOW - timedelta(days=1, hours=9))
    newcomer = 6161
    charge = sb.stars.charge(newcomer, sb.payload(newcomer), PRO_PRICE)
    scheduler = asyncio.create_task(
        run_scheduler(sb.app.pool, sb.app.bot, sb.app.settings, create_i18n(), sb.app.clock)
    )
    try:
        async with asyncio.timeout(20):
            while not await sb.payments(newcomer):  # noqa: ASYNC110 - the job has no event to wait on
                await asyncio.sleep(0.05)
    finally:
        scheduler.cancel()
        await asyncio.gather(scheduler, return_exceptions=True)
    [payment] = await sb.payments(newcomer)
    assert payment["source"] == "reconciliation" and payment["provider_charge_id"] == charge.charge_id
    assert await sb.app.pool.fetchval("SELECT last_run_at FROM star_reconciliation") == NOW


async def test_a_fresh_install_reconciles_at_its_first_start(sb: StarsBot):
    """A fresh database (migrated, never reconciled) has no last run: the first start reconciles
    at once (with the controllable clock at NOW), instead of waiting for the first 03:17 UTC run;
    the next start, within a day, does not repeat it."""
    # The row as a fresh migrate leaves it (test_migrate checks that); the session's database is
    # shared by the tests, and this singleton row is not emptied between them.
    await sb.app.pool.execute("UPDATE star_reconciliation SET next_offset = 0, last_run_at = NULL")
    newcomer = 6163
    charge = sb.stars.charge(newcomer, sb.payload(newcomer), PRO_PRICE)
    _, reconciliation, _ = build_jobs(sb.app.pool, sb.app.bot, sb.app.settings, create_i18n(), sb.app.clock)
    assert await catch_up(sb.app.pool, reconciliation, sb.app.clock.now()) is True
    [payment] = await sb.payments(newcomer)
    assert payment["source"] == "reconciliation" and payment["provider_charge_id"] == charge.charge_id
    assert await sb.app.pool.fetchval("SELECT last_run_at FROM star_reconciliation") == NOW
    sb.app.clock.advance(timedelta(hours=23))
    assert await catch_up(sb.app.pool, reconciliation, sb.app.clock.now()) is False
    sb.app.clock.advance(timedelta(hours=2))
    assert await catch_up(sb.app.pool, reconciliation, sb.app.clock.now()) is True
    assert reconciliation.runs == 2


async def test_a_catch_up_that_telegram_refuses_leaves_the_bot_running(sb: StarsBot):
    """The overdue run at start meets a Telegram error: it is logged, the daily run tries again,
    and the scheduler (inside the bot's task group) keeps running instead of ending the bot."""
    await _set_last_reconciliation(sb.app.pool, NOW - timedelta(days=2))
    sb.app.tg.fail("getStarTransactions", 500, "Internal Server Error", count=10)
    scheduler = asyncio.create_task(
        run_scheduler(sb.app.pool, sb.app.bot, sb.app.settings, create_i18n(), sb.app.clock)
    )
    try:
        async with asyncio.timeout(20):
            while not sb.app.tg.calls_to("getStarTransactions"):  # noqa: ASYNC110 - no event to wait on
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert not scheduler.done()
    finally:
        scheduler.cancel()
        await asyncio.gather(scheduler, return_exceptions=True)


async def test_a_reconciliation_run_within_a_day_is_not_repeated_at_start(sb: StarsBot):
    await _set_last_reconciliation(sb.app.pool, NOW - timedelta(hours=20))
    newcomer = 6162
    sb.stars.charge(newcomer, sb.payload(newcomer), PRO_PRICE)
    _, reconciliation, _ = build_jobs(sb.app.pool, sb.app.bot, sb.app.settings, create_i18n(), sb.app.clock)
    assert await catch_up(sb.app.pool, reconciliation, NOW) is False
    assert reconciliation.runs == 0 and await sb.payments(newcomer) == []


@pytest.mark.parametrize(("amount", "currency"), [(1, "XTR"), (PRO_PRICE - 1, "XTR"), (PRO_PRICE, "USD")])
async def test_a_payment_that_does_not_pay_for_its_plan_is_recorded_grants_nothing_and_warns_the_admins(
    sb: StarsBot, amount: int, currency: str
):
    """Telegram confirms a payment whose amount or currency does not match the plan its payload
    names (the pre-checkout check would have refused it): it is kept, but buys no tier."""
    charge = sb.stars.charge(USER, sb.payload(USER), amount)
    update = sb.stars.successful_payment_update(charge)
    update["message"]["successful_payment"]["currency"] = currency
    await sb.feed(update)
    [payment] = await sb.payments(USER)
    assert (payment["amount"], payment["currency"]) == (amount, currency)
    assert payment["tier_before"] == payment["tier_after"] == "free"
    row = await sb.user(USER)
    assert row["tier"] == "free" and row["tier_expires_at"] is None
    assert await sb.history(USER) == []
    [warning] = sb.app.tg.sent_texts(ADMIN_ID)
    assert "granted nothing" in warning and charge.charge_id in warning and str(USER) in warning
    assert sb.app.tg.sent_texts(USER) == []


async def test_paying_more_than_the_price_grants_the_plan_and_nothing_more(sb: StarsBot):
    charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE * 10)
    await sb.feed(sb.stars.successful_payment_update(charge))
    row = await sb.user(USER)
    assert row["tier"] == "pro" and row["tier_expires_at"] == NOW + PERIOD
