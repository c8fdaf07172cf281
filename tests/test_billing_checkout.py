"""Stripe Checkout and the customer portal from /billing, against the Stripe API look-alike
reached by the real StripeClient through STRIPE_API_BASE; every POST needs the web session
and its CSRF token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from db import stripe as stripe_db
from tests.billing_harness import Billing, billing
from tests.fakes.stripe_api import FakeStripe

WEB_USER = 5151


@pytest.fixture
async def site(settings, db, redis) -> AsyncIterator[Billing]:
    async with billing(settings, db, redis) as running:
        yield running


def checkout_calls(fake: FakeStripe) -> list[dict]:
    return [params for _, what, params in fake.requests if what == "checkout.sessions.create"]


async def test_checkout_makes_a_subscription_session_for_the_user_and_redirects_to_it(site):
    await site.sign_in()
    answer = await site.post("/billing/checkout", {"tier": "elite", "csrf": await site.csrf()})
    assert answer.status == 303
    assert answer.headers["Location"] == f"{site.stripe.url}/c/pay/cs_test_1"
    [params] = checkout_calls(site.stripe)
    metadata = {"telegram_user_id": str(WEB_USER), "tier": "elite"}
    assert params["mode"] == "subscription"
    assert params["line_items"] == {"0": {"price": "price_elite", "quantity": "1"}}
    assert params["client_reference_id"] == str(WEB_USER)
    assert params["metadata"] == metadata
    assert params["subscription_data"] == {"metadata": metadata}
    assert params["success_url"].endswith("/billing?paid=1")
    assert "customer" not in params


async def test_a_returning_stripe_customer_checks_out_as_that_customer(site):
    await site.sign_in()
    async with site.pool.acquire() as conn:
        await stripe_db.link_customer(conn, WEB_USER, "cus_77")
    await site.post("/billing/checkout", {"tier": "pro", "csrf": await site.csrf()})
    [params] = checkout_calls(site.stripe)
    assert params["customer"] == "cus_77"
    assert params["line_items"]["0"]["price"] == "price_pro"


async def test_checkout_without_the_csrf_token_is_refused_and_calls_no_stripe(site):
    await site.sign_in()
    answer = await site.post("/billing/checkout", {"tier": "pro", "csrf": "forged"})
    assert answer.status == 403
    assert (await site.post("/billing/checkout", {"tier": "pro"})).status == 403
    assert checkout_calls(site.stripe) == []


async def test_checkout_without_a_session_is_refused(site):
    answer = await site.post("/billing/checkout", {"tier": "pro", "csrf": "x"})
    assert answer.status == 401
    assert checkout_calls(site.stripe) == []


async def test_an_unknown_plan_is_404(site):
    await site.sign_in()
    assert (await site.post("/billing/checkout", {"tier": "gold", "csrf": await site.csrf()})).status == 404
    assert (await site.post("/billing/checkout", {"tier": "free", "csrf": await site.csrf()})).status == 404


async def test_the_portal_link_appears_for_a_stripe_customer_and_opens_their_portal(site):
    await site.sign_in()
    assert 'id="portal"' not in await site.page()
    assert (await site.post("/billing/portal", {"csrf": await site.csrf()})).status == 404
    async with site.pool.acquire() as conn:
        await stripe_db.link_customer(conn, WEB_USER, "cus_77")
    site.stripe.customers.add("cus_77")
    assert 'id="portal"' in await site.page()
    answer = await site.post("/billing/portal", {"csrf": await site.csrf()})
    assert answer.status == 303
    assert answer.headers["Location"].startswith(f"{site.stripe.url}/p/session/")
    [(_, _, params)] = [r for r in site.stripe.requests if r[1] == "billing_portal.sessions.create"]
    assert params["customer"] == "cus_77" and params["return_url"].endswith("/billing")


async def test_the_billing_page_lets_forms_go_to_stripe_and_is_not_cached(site):
    response = await site.http.get(site.url("/billing"))
    policy = response.headers["Content-Security-Policy"]
    assert "form-action 'self' https://checkout.stripe.com https://billing.stripe.com" in policy
    assert "script-src 'self'" in policy
    assert response.headers["Cache-Control"] == "no-store"


async def test_billing_shows_each_card_plan_at_its_stripe_price_asked_once(site):
    page = await site.page()
    assert "$9.00 / month" in page and "$29.00 / month" in page
    await site.page()
    asked = [p for _, what, p in site.stripe.requests if what == "prices.retrieve"]
    assert len(asked) == 2  # pro and elite, then kept (PRICE_TTL)


async def test_a_price_stripe_does_not_know_shows_no_amount_and_the_page_still_works(site):
    del site.stripe.prices["price_elite"]
    page = await site.page()
    assert "$9.00 / month" in page and "$29.00" not in page
    assert 'class="card-price">–</td>' in page
