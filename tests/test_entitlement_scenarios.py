"""Issue #20 item 1 by use: the payment scenarios through Telegram Stars (the Telegram look-alike,
the real Dispatcher) and through the web's Stripe path (the Stripe look-alike, the real webapp),
both against the one entitlement rule: a purchase or a grant never lowers or shortens a plan, one
renewing Stars subscription per user, revoke and ban cancel it, and the user is told."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from redis.asyncio import Redis

from core.clock import ManualClock
from core.plans import PERIOD, Kind
from core.settings import Settings
from core.tiers import Tier
from tests.billing_harness import Billing, billing
from tests.bot_harness import ADMIN_ID, compile_catalogs
from tests.delivery_harness import add_alert
from tests.fakes.stripe_api import SECRET_KEY, WEBHOOK_SECRET, FakeStripe
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.telegram_payments import FakeStars
from tests.stars_harness import ELITE_PRICE, PRO_PRICE, StarsBot, stars_bot
from tests.test_stripe_webhook import event, signature
from webapp.app import create_app

USER = 6060
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sb(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[StarsBot]:
    async with stars_bot(settings, db, redis, clock=ManualClock(NOW)) as running:
        await running.app.add_user(ADMIN_ID)
        yield running


async def told(sb: StarsBot, count: int) -> list[str]:
    """Waits until the user got `count` messages (a notice follows the admin's answer)."""
    await sb.app.tg.wait_for(lambda _: len(sb.app.tg.sent_texts(USER)) >= count)
    return sb.app.tg.sent_texts(USER)


def buttons(reply) -> list[dict]:
    markup = reply.params.get("reply_markup") or {"inline_keyboard": []}
    return [b for row in markup["inline_keyboard"] for b in row]


async def subscribe(sb: StarsBot, tier: Tier, *, end: datetime) -> str:
    """The user pays a first Stars subscription payment for `tier`; returns its charge id."""
    price = PRO_PRICE if tier is Tier.PRO else ELITE_PRICE
    charge = sb.stars.charge(
        USER, sb.payload(USER, tier, Kind.SUBSCRIPTION), price, subscription_period=2592000
    )
    await sb.feed(
        sb.stars.successful_payment_update(
            charge,
            subscription_expiration_date=int(end.timestamp()),
            is_recurring=True,
            is_first_recurring=True,
        )
    )
    return charge.charge_id


async def test_an_elite_user_is_not_offered_pro_and_a_pro_invoice_is_refused(sb: StarsBot):
    until = NOW + timedelta(days=20)
    await sb.app.add_user(USER, tier="elite", expires=until)
    [reply] = await sb.app.send(USER, "/subscribe")
    labels = [b["text"] for b in buttons(reply)]
    assert labels == ["Elite monthly — 750 ⭐", "+30 days of Elite — 750 ⭐"]
    toast = await sb.app.press(USER, "pass:pro")
    assert "higher plan" in toast.params["text"]
    assert sb.app.tg.calls_to("sendInvoice") == []
    # An invoice made earlier is refused at the pre-checkout, and a payment never lowers the plan.
    await sb.feed(sb.stars.pre_checkout_update(USER, sb.payload(USER, Tier.PRO), PRO_PRICE))
    [answer] = [c.params for c in sb.app.tg.calls_to("answerPreCheckoutQuery")]
    assert answer["ok"] in (False, "false") and "higher plan" in str(answer["error_message"])
    row = await sb.user(USER)
    assert (row["tier"], row["tier_expires_at"]) == ("elite", until)


async def test_the_lower_plan_refusal_is_in_the_users_language(sb: StarsBot):
    await sb.app.add_user(USER, tier="elite", language="ru", expires=NOW + timedelta(days=20))
    await sb.feed(
        sb.stars.pre_checkout_update(USER, sb.payload(USER, Tier.PRO, Kind.SUBSCRIPTION), PRO_PRICE)
    )
    [answer] = [c.params for c in sb.app.tg.calls_to("answerPreCheckoutQuery")]
    assert "более высокий тариф" in str(answer["error_message"])


async def test_an_elite_subscriber_cannot_also_subscribe_to_pro_or_to_elite_again(sb: StarsBot):
    await sb.app.add_user(USER)
    end = NOW + PERIOD
    await subscribe(sb, Tier.ELITE, end=end)
    [reply] = await sb.app.send(USER, "/subscribe")
    assert [b["text"] for b in buttons(reply)] == ["+30 days of Elite — 750 ⭐"]
    assert f"Your Elite monthly plan renews on {end:%Y-%m-%d %H:%M} UTC" in reply.text
    for tier, price in ((Tier.PRO, PRO_PRICE), (Tier.ELITE, ELITE_PRICE)):
        await sb.feed(sb.stars.pre_checkout_update(USER, sb.payload(USER, tier, Kind.SUBSCRIPTION), price))
    refusals = [str(c.params["error_message"]) for c in sb.app.tg.calls_to("answerPreCheckoutQuery")]
    assert "higher plan" in refusals[0] and "already subscribe to this plan" in refusals[1]


async def test_changing_a_pro_subscription_to_elite_cancels_the_pro_one_at_telegram(sb: StarsBot):
    await sb.app.add_user(USER)
    pro_charge = await subscribe(sb, Tier.PRO, end=NOW + PERIOD)
    [reply] = await sb.app.send(USER, "/subscribe")
    assert [b["text"] for b in buttons(reply)] == [
        "+30 days of Pro — 250 ⭐",
        "Change to Elite monthly — 750 ⭐",
        "Elite 30 days — 750 ⭐",
    ]
    elite_end = NOW + PERIOD + timedelta(minutes=5)
    elite_charge = await subscribe(sb, Tier.ELITE, end=elite_end)
    assert sb.stars.charges[pro_charge].canceled and not sb.stars.charges[elite_charge].canceled
    row = await sb.user(USER)
    assert (row["tier"], row["tier_expires_at"]) == ("elite", elite_end)
    sub = await sb.app.pool.fetchrow(
        "SELECT external_id, tier, renews FROM subscriptions WHERE user_id = $1", USER
    )
    assert (sub["external_id"], sub["tier"], sub["renews"]) == (elite_charge, "elite", True)
    assert "Your Pro monthly plan was cancelled" in sb.app.tg.sent_texts(USER)[-1]


async def test_a_shorter_grant_keeps_the_paid_pass_and_says_so(sb: StarsBot):
    await sb.app.add_user(USER)
    charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
    await sb.feed(sb.stars.successful_payment_update(charge))
    sb.app.clock.set(NOW + timedelta(days=2))
    [reply] = await sb.app.send(ADMIN_ID, f"/grant {USER} pro 2")
    end = NOW + PERIOD
    assert reply.text == (
        f"User {USER} already has Pro until {end:%Y-%m-%d %H:%M} UTC, which the grant would not extend: "
        "nothing changed."
    )
    row = await sb.user(USER)
    assert (row["tier"], row["tier_expires_at"]) == ("pro", end)


async def test_a_higher_grant_names_the_lower_subscription_that_still_renews(sb: StarsBot):
    await sb.app.add_user(USER)
    end = NOW + PERIOD
    await subscribe(sb, Tier.PRO, end=end)
    [reply] = await sb.app.send(ADMIN_ID, f"/grant {USER} elite 60")
    assert f"Their Pro subscription (Telegram Stars) still renews on {end:%Y-%m-%d %H:%M} UTC." in reply.text


async def test_a_grant_tells_the_user_in_their_language(sb: StarsBot):
    await sb.app.add_user(USER, language="es")
    await sb.app.send(ADMIN_ID, f"/grant {USER} elite 10")
    [notice] = await told(sb, 1)
    assert "Elite" in notice and "El equipo de VolSpike" in notice


async def test_revoking_a_stars_subscriber_cancels_the_subscription_and_tells_both(sb: StarsBot):
    await sb.app.add_user(USER, language="ru")
    charge = await subscribe(sb, Tier.PRO, end=NOW + PERIOD)
    [reply] = await sb.app.send(ADMIN_ID, f"/revoke {USER}")
    assert "Pro Stars subscription is cancelled" in reply.text
    [edit] = sb.app.tg.calls_to("editUserStarSubscription")
    assert edit.params["telegram_payment_charge_id"] == charge
    assert str(edit.params["is_canceled"]).lower() == "true"
    assert sb.stars.charges[charge].canceled
    assert not await sb.app.pool.fetchval("SELECT renews FROM subscriptions WHERE user_id = $1", USER)
    assert "Команда VolSpike завершила ваш тариф Pro" in (await told(sb, 2))[-1]


async def test_a_revoke_names_what_telegram_would_not_cancel(sb: StarsBot):
    await sb.app.add_user(USER)
    end = NOW + PERIOD
    charge = await subscribe(sb, Tier.PRO, end=end)
    sb.app.tg.fail("editUserStarSubscription", 400, "Bad Request: SUBSCRIPTION_NOT_FOUND")
    [reply] = await sb.app.send(ADMIN_ID, f"/revoke {USER}")
    assert f"charge {charge}): it still renews on {end:%Y-%m-%d %H:%M} UTC" in reply.text
    assert not sb.stars.charges[charge].canceled


async def test_a_ban_cancels_the_stars_subscription_and_unban_tells_the_user(sb: StarsBot):
    await sb.app.add_user(USER, language="uk")
    charge = await subscribe(sb, Tier.ELITE, end=NOW + PERIOD)
    [reply] = await sb.app.send(ADMIN_ID, f"/ban {USER}")
    assert "Elite Stars subscription is cancelled" in reply.text
    assert sb.stars.charges[charge].canceled
    assert "призупинено" in (await told(sb, 2))[-1]
    await sb.app.send(ADMIN_ID, f"/unban {USER}")
    assert "відновлено" in (await told(sb, 3))[-1]


async def test_admin_refund_tells_the_user(sb: StarsBot):
    await sb.app.add_user(USER, language="es")
    charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
    await sb.feed(sb.stars.successful_payment_update(charge))
    await sb.app.send(ADMIN_ID, f"/refund {charge.charge_id}")
    assert "Tu pago fue devuelto" in (await told(sb, 2))[-1]


async def test_admin_notices_are_in_the_admins_language(sb: StarsBot):
    await sb.app.pool.execute("UPDATE users SET language = 'ru' WHERE id = $1", ADMIN_ID)
    await sb.app.add_user(USER)
    charge = sb.stars.charge(USER, "not-our-payload", PRO_PRICE)
    await sb.feed(sb.stars.successful_payment_update(charge))
    [notice] = sb.app.tg.sent_texts(ADMIN_ID)
    assert "Платёж Stars не удалось записать" in notice


async def test_an_upgrade_moves_queued_alerts_to_the_new_tiers_delay(sb: StarsBot):
    await sb.app.add_user(USER)
    alert_id = (await add_alert(sb.app.pool, NOW)).id
    await sb.app.pool.execute(
        "INSERT INTO deliveries (alert_id, chat_id, priority, due_at) VALUES ($1, $2, 2, $3)",
        alert_id,
        USER,
        NOW + timedelta(minutes=15),
    )
    await sb.app.send(ADMIN_ID, f"/grant {USER} elite 30")
    row = await sb.app.pool.fetchrow("SELECT due_at, priority FROM deliveries WHERE chat_id = $1", USER)
    assert (row["due_at"], row["priority"]) == (NOW, 0)


# -- the web's Stripe path ------------------------------------------------------------------

WEB_USER = 5151  # the Telegram OAuth look-alike signs this user in


@pytest.fixture
async def site(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[Billing]:
    async with billing(settings, db, redis) as running:
        yield running


async def test_the_web_offers_an_elite_user_no_pro_checkout_and_refuses_one(site: Billing):
    await site.sign_in()
    until = datetime.now(UTC) + timedelta(days=20)
    await site.pool.execute(
        "UPDATE users SET tier = 'elite', tier_expires_at = $2 WHERE id = $1", WEB_USER, until
    )
    page = await site.page()
    assert 'data-checkout="elite"' in page and 'data-checkout="pro"' not in page
    answer = await site.post("/billing/checkout", {"tier": "pro", "csrf": await site.csrf()})
    assert answer.status == 409
    assert not [what for _, what, _ in site.stripe.requests if what == "checkout.sessions.create"]


async def test_a_card_payment_for_pro_never_lowers_an_elite_plan(site: Billing):
    await site.sign_in()
    now = int(datetime.now(UTC).timestamp())
    until = datetime.fromtimestamp(now, UTC) + timedelta(days=20)
    await site.pool.execute(
        "UPDATE users SET tier = 'elite', tier_expires_at = $2 WHERE id = $1", WEB_USER, until
    )
    invoice = {
        "id": "in_lower",
        "object": "invoice",
        "customer": "cus_1",
        "status": "paid",
        "amount_paid": 900,
        "amount_due": 900,
        "currency": "usd",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": "sub_lower",
                "metadata": {"telegram_user_id": str(WEB_USER), "tier": "pro"},
            },
        },
        "lines": {"object": "list", "data": [{"period": {"start": now, "end": now + 30 * 86_400}}]},
    }
    body = event("invoice.paid", invoice, created=now)
    response = await site.http.post(
        site.url("/webhooks/stripe"),
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": signature(body)},
    )
    assert response.status == 200
    row = await site.pool.fetchrow("SELECT tier, tier_expires_at FROM users WHERE id = $1", WEB_USER)
    assert (row["tier"], row["tier_expires_at"]) == ("elite", until)


async def card_checkout(site: Billing, db: asyncpg.Pool) -> datetime:
    """The web's Stripe path: Pro paid by card for 30 days (checkout completed); its end."""
    await site.sign_in()
    start = int(datetime.now(UTC).timestamp())
    site.stripe.add_subscription(
        "sub_card",
        user_id=WEB_USER,
        tier="pro",
        customer="cus_9",
        period_start=start,
        period_end=start + 30 * 86_400,
    )
    checkout = {
        "id": "cs_card",
        "object": "checkout.session",
        "mode": "subscription",
        "client_reference_id": str(WEB_USER),
        "customer": "cus_9",
        "subscription": "sub_card",
        "payment_status": "paid",
        "status": "complete",
        "metadata": {"telegram_user_id": str(WEB_USER), "tier": "pro"},
    }
    body = event("checkout.session.completed", checkout, created=start)
    response = await site.http.post(
        site.url("/webhooks/stripe"),
        data=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": signature(body)},
    )
    assert response.status == 200
    end = datetime.fromtimestamp(start + 30 * 86_400, UTC)
    assert await db.fetchval("SELECT tier_expires_at FROM users WHERE id = $1", WEB_USER) == end
    return end


async def test_a_card_paid_plan_keeps_its_end_under_a_shorter_grant_and_revoke_cancels_the_card_subscription(
    site: Billing, settings: Settings, db: asyncpg.Pool, redis: Redis
):
    """Pro paid by card for 30 days; the bot's admin grants Pro for 2 days (the paid end stays),
    then revokes: the card subscription is cancelled at Stripe."""
    end = await card_checkout(site, db)
    config = settings.model_copy(
        update={"stripe_secret_key": SecretStr(SECRET_KEY), "stripe_api_base": site.stripe.url}
    )
    async with stars_bot(config, db, redis) as bot:
        await bot.app.add_user(ADMIN_ID)
        [reply] = await bot.app.send(ADMIN_ID, f"/grant {WEB_USER} pro 2")
        assert "nothing changed" in reply.text
        assert await db.fetchval("SELECT tier_expires_at FROM users WHERE id = $1", WEB_USER) == end
        [reply] = await bot.app.send(ADMIN_ID, f"/revoke {WEB_USER}")
    assert "Their Pro card subscription sub_card is cancelled" in reply.text
    assert site.stripe.subscriptions["sub_card"]["status"] == "canceled"
    assert ("DELETE", "subscriptions.cancel", {}) in site.stripe.requests
    assert not await db.fetchval("SELECT renews FROM subscriptions WHERE user_id = $1", WEB_USER)


async def test_without_stripe_in_the_bot_a_revoke_names_the_card_renewal(
    site: Billing, settings: Settings, db: asyncpg.Pool, redis: Redis
):
    end = await card_checkout(site, db)
    async with stars_bot(settings, db, redis) as bot:
        await bot.app.add_user(ADMIN_ID)
        [reply] = await bot.app.send(ADMIN_ID, f"/revoke {WEB_USER}")
    assert f"Their Pro card subscription sub_card still renews on {end:%Y-%m-%d %H:%M} UTC" in reply.text
    assert site.stripe.subscriptions["sub_card"]["status"] == "active"


async def test_a_card_subscriber_is_offered_a_change_and_a_stars_upgrade_cancels_the_card_subscription(
    site: Billing, settings: Settings, db: asyncpg.Pool, redis: Redis
):
    end = await card_checkout(site, db)
    config = settings.model_copy(
        update={"stripe_secret_key": SecretStr(SECRET_KEY), "stripe_api_base": site.stripe.url}
    )
    async with stars_bot(config, db, redis, clock=ManualClock(datetime.now(UTC))) as bot:
        [reply] = await bot.app.send(WEB_USER, "/subscribe")
        assert f"Your Pro card subscription renews on {end:%Y-%m-%d %H:%M} UTC" in reply.text
        labels = [b["text"] for b in buttons(reply)]
        assert "Pro monthly — 250 ⭐" not in labels and "Change to Elite monthly — 750 ⭐" in labels
        charge = bot.stars.charge(
            WEB_USER,
            bot.payload(WEB_USER, Tier.ELITE, Kind.SUBSCRIPTION),
            ELITE_PRICE,
            subscription_period=2592000,
        )
        await bot.feed(
            bot.stars.successful_payment_update(
                charge,
                subscription_expiration_date=int((end + timedelta(days=1)).timestamp()),
                is_recurring=True,
                is_first_recurring=True,
            )
        )
        thanks = bot.app.tg.sent_texts(WEB_USER)[-1]
    assert "Your Pro card subscription was cancelled" in thanks
    assert site.stripe.subscriptions["sub_card"]["status"] == "canceled"
    assert await db.fetchval("SELECT tier FROM users WHERE id = $1", WEB_USER) == "elite"


async def test_a_card_checkout_to_a_higher_tier_cancels_the_stars_subscription(
    settings: Settings, db: asyncpg.Pool, redis: Redis
):
    compile_catalogs()
    now = datetime.now(UTC)
    start = int(now.timestamp())
    await db.execute(
        "INSERT INTO users (id, first_name, language, tier, tier_expires_at) "
        "VALUES ($1, 'T', 'en', 'pro', $2)",
        USER,
        now + PERIOD,
    )
    async with FakeTelegram() as tg, FakeStripe() as fake_stripe:
        stars = FakeStars(tg)
        first = stars.charge(
            USER, f"v1:subscription:pro:{PRO_PRICE}:{USER}", PRO_PRICE, subscription_period=2592000
        )
        await db.execute(
            "INSERT INTO subscriptions (user_id, provider, external_id, tier, period_end, renews) "
            "VALUES ($1, 'stars', $2, 'pro', $3, true)",
            USER,
            first.charge_id,
            now + PERIOD,
        )
        fake_stripe.add_subscription(
            "sub_up",
            user_id=USER,
            tier="elite",
            customer="cus_up",
            period_start=start,
            period_end=start + 30 * 86_400,
        )
        config = settings.model_copy(
            update={
                "bot_token": SecretStr(TOKEN),
                "telegram_api_url": tg.url,
                "stripe_secret_key": SecretStr(SECRET_KEY),
                "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
                "stripe_api_base": fake_stripe.url,
            }
        )
        checkout = {
            "id": "cs_up",
            "object": "checkout.session",
            "mode": "subscription",
            "client_reference_id": str(USER),
            "customer": "cus_up",
            "subscription": "sub_up",
            "payment_status": "paid",
            "status": "complete",
            "metadata": {"telegram_user_id": str(USER), "tier": "elite"},
        }
        body = event("checkout.session.completed", checkout, created=start)
        async with TestClient(TestServer(create_app(config, pool=db, redis=redis))) as client:
            response = await client.post(
                "/webhooks/stripe",
                data=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": signature(body)},
            )
        assert response.status == 200
        assert stars.charges[first.charge_id].canceled
    assert await db.fetchval("SELECT tier FROM users WHERE id = $1", USER) == "elite"
    assert not await db.fetchval(
        "SELECT renews FROM subscriptions WHERE user_id = $1 AND provider = 'stars'", USER
    )
