"""POST /webhooks/stripe, signed in each test with Stripe's real scheme (`t=<ts>,v1=<hex>`, the
HMAC-SHA256 of `<ts>.<body>` under the endpoint secret), against real PostgreSQL, the Stripe
API look-alike (a checkout fetches its subscription) and the Telegram look-alike (a failed
payment is told in the bot)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from core.clock import ManualClock
from db import payments as payments_db
from db import subscriptions as subscriptions_db
from db.tier_history import history
from tests.bot_harness import compile_catalogs
from tests.fakes.stripe_api import SECRET_KEY, WEBHOOK_SECRET, FakeStripe
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from webapp.app import create_app

USER = 4242
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
START = int(NOW.timestamp())
MONTH = 30 * 86_400
_ids = itertools.count(1)


def signature(body: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    v1 = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={v1}"


def event(kind: str, obj: dict[str, Any], *, created: int = START) -> bytes:
    # The stdlib writes integers beyond 64 bits too (orjson refuses them), as any sender may.
    return json.dumps(
        {
            "id": f"evt_{next(_ids)}",
            "object": "event",
            "api_version": "2025-03-31.basil",
            "created": created,
            "type": kind,
            "livemode": False,
            "data": {"object": obj},
        }
    ).encode()


def checkout(user_id: int = USER, tier: str = "pro", sub: str = "sub_1") -> dict[str, Any]:
    return {
        "id": "cs_test_1",
        "object": "checkout.session",
        "mode": "subscription",
        "client_reference_id": str(user_id),
        "customer": "cus_1",
        "subscription": sub,
        "payment_status": "paid",
        "status": "complete",
        "metadata": {"telegram_user_id": str(user_id), "tier": tier},
    }


def invoice(
    invoice_id: str, start: int, end: int, *, user_id: int = USER, tier: str = "pro", status: str = "paid"
) -> dict[str, Any]:
    """An invoice in the current shape: subscription under parent.subscription_details."""
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": "cus_1",
        "status": status,
        "amount_paid": 900 if status == "paid" else 0,
        "amount_due": 900,
        "currency": "usd",
        "billing_reason": "subscription_cycle",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": "sub_1",
                "metadata": {"telegram_user_id": str(user_id), "tier": tier},
            },
        },
        "lines": {
            "object": "list",
            "data": [{"id": "il_1", "object": "line_item", "period": {"start": start, "end": end}}],
            "has_more": False,
        },
    }


def subscription_obj(
    *, cancel: bool = False, status: str = "active", end: int = START + MONTH
) -> dict[str, Any]:
    return {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "status": status,
        "cancel_at_period_end": cancel,
        "metadata": {"telegram_user_id": str(USER), "tier": "pro"},
        "items": {"object": "list", "data": [{"id": "si_1", "current_period_end": end}]},
    }


@dataclass
class Hook:
    client: TestClient
    stripe: FakeStripe
    tg: FakeTelegram
    pool: Any

    async def post(self, body: bytes, sig: str | None = "sign") -> int:
        headers = {"Content-Type": "application/json"}
        if sig == "sign":
            sig = signature(body)
        if sig is not None:
            headers["Stripe-Signature"] = sig
        response = await self.client.post("/webhooks/stripe", data=body, headers=headers)
        assert response.content_type == "application/json"
        return response.status

    async def user(self) -> tuple[str, datetime | None]:
        row = await self.pool.fetchrow("SELECT tier, tier_expires_at FROM users WHERE id = $1", USER)
        return row["tier"], row["tier_expires_at"]

    async def events(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM webhook_events WHERE provider = 'stripe'"))


@pytest.fixture
async def hook(settings, db, redis) -> AsyncIterator[Hook]:
    compile_catalogs()
    await db.execute(
        "INSERT INTO users (id, first_name, language, bot_started_at) VALUES ($1, 'T', 'es', now())", USER
    )
    async with FakeStripe() as fake_stripe, FakeTelegram() as tg:
        fake_stripe.add_subscription(
            "sub_1", user_id=USER, tier="pro", customer="cus_1", period_start=START, period_end=START + MONTH
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
        app = create_app(config, pool=db, redis=redis, clock=ManualClock(NOW))
        async with TestClient(TestServer(app)) as client:
            yield Hook(client, fake_stripe, tg, db)


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def test_checkout_grants_the_tier_until_the_subscription_period_end_and_links_the_customer(hook):
    assert await hook.post(event("checkout.session.completed", checkout())) == 200
    assert await hook.user() == ("pro", at(START + MONTH))
    sub = await subscriptions_db.get(hook.pool, USER)
    assert sub is not None and (sub.provider, sub.external_id, sub.renews) == ("stripe", "sub_1", True)
    assert (
        await hook.pool.fetchval("SELECT customer_id FROM stripe_customers WHERE user_id = $1", USER)
        == "cus_1"
    )
    [change] = await history(hook.pool, USER)
    assert (change["tier_after"], change["cause"]) == ("pro", "stripe_payment")
    assert ("GET", "subscriptions.retrieve", {}) in hook.stripe.requests


async def test_invoice_paid_extends_to_the_period_end_and_records_one_payment(hook):
    await hook.post(event("checkout.session.completed", checkout()))
    renewal = invoice("in_2", START + MONTH, START + 2 * MONTH)
    assert await hook.post(event("invoice.paid", renewal)) == 200
    assert await hook.user() == ("pro", at(START + 2 * MONTH))
    payment = await payments_db.get_by_charge(hook.pool, "stripe", "in_2")
    assert payment is not None and (payment["amount"], payment["tier"], payment["source"]) == (
        900,
        "pro",
        "webhook",
    )


async def test_a_replayed_event_answers_200_and_changes_nothing(hook):
    body = event("invoice.paid", invoice("in_1", START, START + MONTH))
    assert await hook.post(body) == 200
    before = (await hook.user(), len(await history(hook.pool, USER)))
    assert await hook.post(body) == 200
    assert await hook.post(body, signature(body)) == 200
    assert (await hook.user(), len(await history(hook.pool, USER))) == before
    assert await hook.pool.fetchval("SELECT count(*) FROM payments") == 1
    assert await hook.events() == 1


async def test_an_older_invoice_arriving_after_a_newer_one_does_not_shorten_the_tier(hook):
    assert await hook.post(event("invoice.paid", invoice("in_2", START + MONTH, START + 2 * MONTH))) == 200
    assert await hook.post(event("invoice.paid", invoice("in_1", START, START + MONTH))) == 200
    assert await hook.user() == ("pro", at(START + 2 * MONTH))
    assert await hook.pool.fetchval("SELECT count(*) FROM payments") == 2
    assert len(await history(hook.pool, USER)) == 1


async def test_invoice_before_checkout_ends_in_the_same_state_as_in_order(hook):
    assert await hook.post(event("invoice.paid", invoice("in_1", START, START + MONTH))) == 200
    assert await hook.post(event("checkout.session.completed", checkout())) == 200
    assert await hook.user() == ("pro", at(START + MONTH))
    assert len(await history(hook.pool, USER)) == 1
    sub = await subscriptions_db.get(hook.pool, USER)
    assert sub is not None and sub.renews and sub.period_end == at(START + MONTH)


async def test_a_cancelled_subscription_stops_renewing_and_keeps_the_tier_until_expiry(hook):
    await hook.post(event("checkout.session.completed", checkout()))
    assert (
        await hook.post(
            event("customer.subscription.updated", subscription_obj(cancel=True), created=START + 60)
        )
        == 200
    )
    sub = await subscriptions_db.get(hook.pool, USER)
    assert sub is not None and not sub.renews
    assert await hook.user() == ("pro", at(START + MONTH))


async def test_an_older_subscription_update_arriving_late_does_not_turn_renewal_back_on(hook):
    await hook.post(event("checkout.session.completed", checkout()))
    await hook.post(
        event("customer.subscription.updated", subscription_obj(cancel=True), created=START + 120)
    )
    await hook.post(
        event("customer.subscription.updated", subscription_obj(cancel=False), created=START + 60)
    )
    sub = await subscriptions_db.get(hook.pool, USER)
    assert sub is not None and not sub.renews


async def test_a_deleted_subscription_before_its_checkout_still_ends_without_renewal(hook):
    assert await hook.post(event("customer.subscription.deleted", subscription_obj(status="canceled"))) == 200
    assert await hook.post(event("checkout.session.completed", checkout(), created=START - 60)) == 200
    sub = await subscriptions_db.get(hook.pool, USER)
    assert sub is not None and not sub.renews
    assert await hook.user() == ("pro", at(START + MONTH))


async def test_a_failed_payment_is_told_in_the_bot_and_the_tier_stays(hook):
    await hook.post(event("checkout.session.completed", checkout()))
    failed = invoice("in_2", START + MONTH, START + 2 * MONTH, status="open")
    assert await hook.post(event("invoice.payment_failed", failed)) == 200
    [text] = hook.tg.sent_texts(USER)
    assert "Pro" in text and "tarjeta" in text  # the user's language (es)
    assert await hook.user() == ("pro", at(START + MONTH))
    assert await hook.pool.fetchval("SELECT count(*) FROM payments") == 0


@pytest.mark.parametrize(
    "sig",
    [
        None,
        "",
        "t=1,v1=00",
        signature(b"{}", secret="whsec_forged"),
        "garbage",
    ],
    ids=["missing", "empty", "wrong", "forged-secret", "garbage"],
)
async def test_a_bad_signature_is_400_and_changes_nothing(hook, sig):
    body = event("checkout.session.completed", checkout())
    assert await hook.post(body, sig) == 400
    assert await hook.events() == 0
    assert await hook.user() == ("free", None)


async def test_a_signature_for_another_body_is_400(hook):
    body = event("checkout.session.completed", checkout())
    assert await hook.post(body, signature(body.replace(b"pro", b"elite"))) == 400
    assert await hook.user() == ("free", None)


async def test_a_timestamp_beyond_the_tolerance_is_400(hook):
    body = event("checkout.session.completed", checkout())
    assert await hook.post(body, signature(body, at=int(time.time()) - 301 - 60)) == 400
    assert await hook.events() == 0
    assert await hook.user() == ("free", None)


async def test_a_signed_body_that_is_not_json_is_400(hook):
    body = b"this is not json"
    assert await hook.post(body) == 400
    assert await hook.events() == 0


async def test_an_unknown_event_type_is_200_and_changes_nothing(hook):
    assert await hook.post(event("customer.created", {"id": "cus_9", "object": "customer"})) == 200
    assert await hook.user() == ("free", None)


async def test_an_unknown_telegram_user_is_logged_and_answered_200(hook, caplog):
    body = event("checkout.session.completed", checkout(user_id=999_999))
    assert await hook.post(body) == 200
    assert "unknown Telegram user" in caplog.text
    assert await hook.pool.fetchval("SELECT count(*) FROM users WHERE id = 999999") == 0


async def test_an_event_missing_what_it_needs_is_logged_and_answered_200(hook, caplog):
    broken = invoice("in_1", START, START + MONTH)
    broken["lines"] = {"object": "list", "data": []}
    assert await hook.post(event("invoice.paid", broken)) == 200
    assert "not usable" in caplog.text
    assert await hook.user() == ("free", None)


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "evt_x", "type": "invoice.paid"}',
        b'{"id": "evt_x", "type": "invoice.paid", "created": 1, "data": []}',
        b'{"id": "evt_x", "type": "invoice.paid", "created": "soon", "data": {"object": {}}}',
        b"[1, 2]",
    ],
    ids=["no-data", "data-not-an-object", "created-not-a-timestamp", "not-an-object"],
)
async def test_a_signed_body_that_is_not_a_stripe_event_is_400(hook, body):
    assert await hook.post(body) == 400
    assert await hook.events() == 0


async def test_the_same_event_twice_at_once_is_applied_once(hook):
    body = event("invoice.paid", invoice("in_1", START, START + MONTH))
    assert await asyncio.gather(hook.post(body), hook.post(body)) == [200, 200]
    assert await hook.pool.fetchval("SELECT count(*) FROM payments") == 1
    assert len(await history(hook.pool, USER)) == 1


async def test_after_a_cancellation_the_lifecycle_job_ends_the_tier_at_expiry_without_grace(hook):
    await hook.post(event("checkout.session.completed", checkout()))
    just_after = at(START + MONTH) + timedelta(seconds=1)
    grace = timedelta(hours=6)
    assert await subscriptions_db.expired(hook.pool, just_after, grace, 10) == []  # renewing: grace
    await hook.post(
        event("customer.subscription.deleted", subscription_obj(status="canceled"), created=START + 60)
    )
    [due] = await subscriptions_db.expired(hook.pool, just_after, grace, 10)
    assert (due.user_id, due.tier) == (USER, "pro")


async def test_a_signature_timestamp_far_in_the_future_is_refused(hook):
    """Correctly signed, but dated an hour ahead: the library checks only the past."""
    body = event("invoice.paid", invoice("in_future", START, START + MONTH))
    assert await hook.post(body, signature(body, at=int(time.time()) + 3600)) == 400
    assert await hook.user() == ("free", None)
    assert await hook.events() == 0


@pytest.mark.parametrize(
    "body",
    [
        event("invoice.paid", invoice("in_x", START, START + MONTH), created=10**12),
        event("invoice.paid", invoice("in_x", START, START + MONTH), created=-(10**12)),
        orjson.dumps(
            {"id": "evt_" + "x" * 10_000, "object": "event", "created": START, "type": "invoice.paid"}
            | {"data": {"object": invoice("in_x", START, START + MONTH)}}
        ),
    ],
    ids=["created-year-33658", "created-before-1970", "id-10000-chars"],
)
async def test_a_signed_event_with_an_absurd_envelope_is_400(hook, body: bytes):
    assert await hook.post(body) == 400
    assert await hook.user() == ("free", None)
    assert await hook.events() == 0


def _absurd_invoice(**changes: Any) -> dict[str, Any]:
    obj = invoice("in_absurd", START, START + MONTH)
    meta = obj["parent"]["subscription_details"]["metadata"]
    for key, value in changes.items():
        if key == "telegram_user_id":
            meta[key] = value
        elif key == "period":
            obj["lines"]["data"][0]["period"] = value
        else:
            obj[key] = value
    return obj


@pytest.mark.parametrize(
    "obj",
    [
        _absurd_invoice(period={"start": START, "end": 10**11}),  # year 5138
        _absurd_invoice(period={"start": START, "end": START + 5 * 365 * 86_400}),  # paid 5 years ahead
        _absurd_invoice(period={"start": START + MONTH, "end": START}),
        _absurd_invoice(period={"start": 2**63, "end": 2**64}),
        _absurd_invoice(telegram_user_id=str(2**53 + 1)),
        _absurd_invoice(telegram_user_id="-4242"),
        _absurd_invoice(amount_paid=2**70),
        _absurd_invoice(id="in_" + "x" * 1000),
        _absurd_invoice(currency="dollars"),
    ],
    ids=[
        "period-year-5138",
        "period-5-years",
        "period-backwards",
        "period-2^64",
        "user-2^53",
        "user-negative",
        "amount-2^70",
        "invoice-id-1000",
        "currency-word",
    ],
)
async def test_a_signed_invoice_with_absurd_values_grants_nothing(hook, obj: dict[str, Any]):
    assert await hook.post(event("invoice.paid", obj)) == 200  # Stripe retrying cannot fix it
    assert await hook.user() == ("free", None)
    assert await hook.pool.fetchval("SELECT count(*) FROM payments") == 0


async def test_a_subscription_update_ending_in_year_9999_changes_nothing(hook):
    await hook.post(event("checkout.session.completed", checkout()))
    before = await hook.user()
    assert await hook.post(event("customer.subscription.updated", subscription_obj(end=253402214400))) == 200
    assert await hook.user() == before


# --- Stripe's own refunds: charge.refunded --------------------------------------------------


def charge(charge_id: str, payment_intent: str, *, refunded: int = 900, amount: int = 900) -> dict[str, Any]:
    """A Charge in the current API's shape (no `invoice`: its payment intent leads to it)."""
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunded,
        "currency": "usd",
        "customer": "cus_1",
        "paid": True,
        "payment_intent": payment_intent,
        "refunded": refunded == amount,
        "status": "succeeded",
    }


async def _renewed(hook: Hook) -> None:
    """Checkout (pro until START + MONTH), then the renewal invoice in_2 paid by pi_2."""
    assert await hook.post(event("checkout.session.completed", checkout())) == 200
    assert await hook.post(event("invoice.paid", invoice("in_2", START + MONTH, START + 2 * MONTH))) == 200
    hook.stripe.pay_invoice("in_2", "pi_2", 900)
    assert await hook.user() == ("pro", at(START + 2 * MONTH))


async def test_a_full_card_refund_takes_back_what_its_payment_gave_and_tells_the_user(hook):
    await _renewed(hook)
    assert await hook.post(event("charge.refunded", charge("ch_2", "pi_2"))) == 200
    assert await hook.user() == ("pro", at(START + MONTH))  # the renewal's month is taken back
    payment = await payments_db.get_by_charge(hook.pool, "stripe", "in_2")
    assert payment is not None and payment["status"] == "refunded"
    last = (await history(hook.pool, USER))[-1]
    assert last["cause"] == "refund" and last["tier_after"] == "pro"
    [text] = hook.tg.sent_texts(USER)
    assert text.startswith("Tu pago fue devuelto.") and "Pro" in text  # the user's language (es)
    lookups = [params for _, what, params in hook.stripe.requests if what == "invoice_payments.list"]
    assert lookups == [{"payment": {"type": "payment_intent", "payment_intent": "pi_2"}, "limit": "1"}]


CANCEL = ("DELETE", "subscriptions.cancel", {})


async def test_a_full_card_refund_ends_the_renewal_as_a_stars_refund_does(hook, caplog):
    await _renewed(hook)
    assert await hook.post(event("charge.refunded", charge("ch_2", "pi_2"))) == 200
    # cancelled at Stripe at once: the customer is not charged again for the plan refunded
    assert hook.stripe.requests.count(CANCEL) == 1
    assert hook.stripe.subscriptions["sub_1"]["status"] == "canceled"
    sub = await subscriptions_db.get(hook.pool, USER)
    assert sub is not None and (sub.external_id, sub.renews) == ("sub_1", False)
    # Stripe's own redelivery and its subscription.deleted change nothing more
    assert await hook.post(event("charge.refunded", charge("ch_2", "pi_2"))) == 200
    deleted = subscription_obj(status="canceled")
    assert await hook.post(event("customer.subscription.deleted", deleted, created=START + 60)) == 200
    assert hook.stripe.requests.count(CANCEL) == 1
    assert await hook.user() == ("pro", at(START + MONTH))
    assert "refunded card subscription cancelled" in caplog.text


async def test_a_refund_that_stripe_will_not_cancel_still_takes_the_plan_back_and_says_so(hook, caplog):
    await _renewed(hook)
    hook.stripe.subscriptions["sub_1"]["status"] = "canceled"  # cancelled in the dashboard first
    assert await hook.post(event("charge.refunded", charge("ch_2", "pi_2"))) == 200
    assert await hook.user() == ("pro", at(START + MONTH))
    assert len(hook.tg.sent_texts(USER)) == 1
    assert "was not cancelled at Stripe: cancel it in the dashboard" in caplog.text


async def test_a_refund_while_stripe_cannot_be_reached_for_the_cancel_still_takes_the_plan_back(hook, caplog):
    await _renewed(hook)
    hook.stripe.cancel_unreachable = True  # the lookup of the invoice answered; then Stripe is gone
    assert await hook.post(event("charge.refunded", charge("ch_2", "pi_2"))) == 200
    assert await hook.user() == ("pro", at(START + MONTH))
    sub = await subscriptions_db.get(hook.pool, USER)
    assert sub is not None and not sub.renews
    assert hook.stripe.subscriptions["sub_1"]["status"] == "active"
    assert "was not cancelled at Stripe: cancel it in the dashboard" in caplog.text
    assert len(hook.tg.sent_texts(USER)) == 1


async def test_a_refund_of_a_replaced_subscriptions_payment_leaves_the_new_one_renewing(hook):
    await _renewed(hook)
    hook.stripe.add_subscription(
        "sub_2", user_id=USER, tier="elite", customer="cus_1", period_start=START, period_end=START + MONTH
    )
    assert await hook.post(event("checkout.session.completed", checkout(tier="elite", sub="sub_2"))) == 200
    assert await hook.post(event("charge.refunded", charge("ch_2", "pi_2"))) == 200  # sub_1's renewal
    assert CANCEL not in hook.stripe.requests
    sub = await subscriptions_db.get(hook.pool, USER)
    assert sub is not None and (sub.external_id, sub.renews) == ("sub_2", True)


async def test_a_refunded_first_payment_ends_the_plan_as_a_stars_refund_does(hook):
    assert await hook.post(event("invoice.paid", invoice("in_1", START, START + MONTH))) == 200
    hook.stripe.pay_invoice("in_1", "pi_1", 900)
    assert await hook.user() == ("pro", at(START + MONTH))
    assert await hook.post(event("charge.refunded", charge("ch_1", "pi_1"))) == 200
    assert await hook.user() == ("free", None)
    assert hook.tg.sent_texts(USER) == ["Tu pago fue devuelto. Tu plan ahora es Free."]


async def test_a_duplicate_refund_event_changes_nothing_more(hook):
    await _renewed(hook)
    body = event("charge.refunded", charge("ch_2", "pi_2"))
    assert await hook.post(body) == 200
    after = (await hook.user(), len(await history(hook.pool, USER)), await hook.events())
    assert await hook.post(body) == 200  # Stripe redelivers the same event
    again = event("charge.refunded", charge("ch_2", "pi_2"))  # another event about the same charge
    assert await hook.post(again) == 200
    assert (await hook.user(), len(await history(hook.pool, USER))) == after[:2]
    assert await hook.events() == after[2] + 1
    assert len(hook.tg.sent_texts(USER)) == 1


async def test_a_partial_card_refund_leaves_the_plan(hook, caplog):
    await _renewed(hook)
    assert await hook.post(event("charge.refunded", charge("ch_2", "pi_2", refunded=300))) == 200
    assert await hook.user() == ("pro", at(START + 2 * MONTH))
    payment = await payments_db.get_by_charge(hook.pool, "stripe", "in_2")
    assert payment is not None and payment["status"] == "paid"
    assert hook.tg.sent_texts(USER) == [] and "partial card refund" in caplog.text
    assert CANCEL not in hook.stripe.requests


@pytest.mark.parametrize("kind", ["missing", "forged", "stale"])
async def test_a_forged_refund_event_is_400_and_changes_nothing(hook, kind: str):
    await _renewed(hook)
    body = event("charge.refunded", charge("ch_2", "pi_2"))
    sig = {
        "missing": None,
        "forged": signature(body, secret="whsec_forged"),
        "stale": signature(body, at=int(time.time()) - 3600),
    }[kind]
    assert await hook.post(body, sig=sig) == 400
    assert await hook.user() == ("pro", at(START + 2 * MONTH))
    assert hook.tg.sent_texts(USER) == []


async def test_a_refund_of_a_payment_volspike_never_recorded_changes_nothing(hook, caplog):
    await _renewed(hook)
    hook.stripe.pay_invoice("in_other", "pi_other", 900)  # an invoice VolSpike has no payment for
    assert await hook.post(event("charge.refunded", charge("ch_3", "pi_other"))) == 200
    assert await hook.post(event("charge.refunded", charge("ch_4", "pi_unknown"))) == 200  # paid no invoice
    assert await hook.user() == ("pro", at(START + 2 * MONTH))
    assert hook.tg.sent_texts(USER) == []
    assert "never recorded" in caplog.text
    assert any("paid no invoice" in str(getattr(r, "error", "")) for r in caplog.records)


@pytest.mark.parametrize(
    "obj",
    [
        {**charge("ch_2", "pi_2"), "amount_refunded": 10**12},
        {**charge("ch_2", "pi_2"), "amount_refunded": 1000},  # more than charged
        {**charge("ch_2", "pi_2"), "object": "refund"},
        {**charge("ch_2", "pi_2"), "payment_intent": None},
    ],
    ids=["huge", "over", "not-a-charge", "no-intent"],
)
async def test_a_signed_refund_with_absurd_values_changes_nothing(hook, obj: dict[str, Any]):
    await _renewed(hook)
    assert await hook.post(event("charge.refunded", obj)) == 200
    assert await hook.user() == ("pro", at(START + 2 * MONTH))
    assert hook.tg.sent_texts(USER) == []
