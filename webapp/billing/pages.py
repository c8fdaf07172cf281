"""GET /billing and its forms: Log In With Telegram, then Stripe Checkout and the customer portal.

This is VolSpike's own web page for a normal browser; inside Telegram the plans page sells with
Stars only and never links here. A visitor without a session sees the sign-in button; a signed-in
user sees their plan, a checkout button per paid plan with a Stripe price, and the portal link
once they are a Stripe customer. Every POST needs the session and its CSRF token.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import stripe
from aiohttp import web
from babel.numbers import format_currency, get_currency_precision
from stripe.params.checkout import SessionCreateParams

from core.entitlements import Entitlement, Offer, offer
from core.errors import Conflict, Forbidden, NotFound, Unauthorized
from core.i18n import pick_locale
from core.settings import Settings
from core.tiers import Tier
from db import stripe as stripe_db
from db import subscriptions as subscriptions_db
from db import users as users_db
from webapp import keys
from webapp import session as web_session
from webapp.billing import oidc
from webapp.billing.client import STRIPE
from webapp.locale import page_locale
from webapp.pages.templating import render
from webapp.pages.views import common, plan_rows
from webapp.security import CONTENT_SECURITY_POLICY, count_request

log = logging.getLogger(__name__)

LOGIN_STARTS_PER_MINUTE = 20  # per client address: a person signs in a few times at most
STRIPE_ORIGINS = ("https://checkout.stripe.com", "https://billing.stripe.com")


def prices(settings: Settings) -> dict[Tier, str]:
    configured = {Tier.PRO: settings.stripe_price_pro, Tier.ELITE: settings.stripe_price_elite}
    return {tier: price for tier, price in configured.items() if price}


@dataclass(frozen=True, slots=True)
class CardPrice:
    amount: str  # formatted in the page's language: "$9.00", "9,00 $"
    interval: str | None  # "month" or "year" when billed every one of them; None otherwise


PRICE_TTL = 600.0  # seconds a Stripe price is shown before it is asked for again
CARD_PRICES = web.AppKey("card_prices", dict)  # price id -> (asked at, the Price's fields or None)


async def _stripe_price(request: web.Request, price_id: str) -> dict[str, Any] | None:
    """The Stripe Price's `unit_amount`, `currency`, `recurring` (GET /v1/prices/{id}), kept for
    PRICE_TTL; None when Stripe does not answer (the page then shows no amount, never a wrong one)."""
    cache: dict[str, tuple[float, dict[str, Any] | None]] = request.app[CARD_PRICES]
    now = time.monotonic()
    kept = cache.get(price_id)
    if kept is not None and now - kept[0] < PRICE_TTL:
        return kept[1]
    try:
        price = await request.app[STRIPE].v1.prices.retrieve_async(price_id)
        recurring = price.recurring
        fields: dict[str, Any] | None = {
            "unit_amount": price.unit_amount,
            "currency": price.currency,
            "interval": recurring.interval if recurring is not None else None,
            "interval_count": recurring.interval_count if recurring is not None else None,
        }
    except stripe.StripeError as exc:
        log.warning("card price not read", extra={"price": price_id, "error": str(exc)})
        fields = None
    cache[price_id] = (now, fields)
    return fields


async def card_prices(request: web.Request, locale: str) -> dict[str, CardPrice]:
    """Each card plan's price as Stripe has it, by tier, for the plan table on /billing."""
    out: dict[str, CardPrice] = {}
    for tier, price_id in prices(request.app[keys.SETTINGS]).items():
        found = await _stripe_price(request, price_id)
        if found is None or found["unit_amount"] is None or not found["currency"]:
            continue
        currency = str(found["currency"]).upper()
        amount = Decimal(found["unit_amount"]).scaleb(-get_currency_precision(currency))
        interval = found["interval"] if found["interval_count"] == 1 else None
        out[tier.value] = CardPrice(format_currency(amount, currency, locale=locale), interval)
    return out


def _base_url(request: web.Request) -> str:
    settings = request.app[keys.SETTINGS]
    return settings.webapp_url.rstrip("/") if settings.webapp_url else f"{request.scheme}://{request.host}"


def _content_security_policy(settings: Settings) -> str:
    """The house policy, with Stripe's pages allowed as form targets (a form POST answered with a
    redirect to Checkout is checked against `form-action`)."""
    origins = list(STRIPE_ORIGINS)
    api = urlsplit(settings.stripe_api_base)
    if api.hostname != "api.stripe.com":  # a Stripe look-alike serves its own checkout pages
        origins.append(f"{api.scheme}://{api.netloc}")
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {' '.join(origins)}")


def _require_stripe(settings: Settings) -> None:
    """With card payments off, every billing form and the sign-in lead back to /billing, the page
    that says so and where to pay instead (a browser shows a page, never a JSON error)."""
    if not settings.stripe_enabled:
        raise web.HTTPSeeOther("/billing")


async def _signed_in(request: web.Request) -> web_session.WebSession:
    found = await web_session.load(request)
    if found is None:
        raise Unauthorized("sign in with Telegram on /billing first")
    await web_session.check_csrf(request, found)
    return found


async def _card_offer(request: web.Request, user_id: int, tier: Tier) -> Offer:
    """What a card subscription to `tier` would be for the user, by the one entitlement rule."""
    pool = request.app[keys.POOL]
    now = request.app[keys.CLOCK].now()
    user = await users_db.get(pool, user_id)
    if user is None:
        raise Unauthorized("sign in with Telegram on /billing first")
    found = await subscriptions_db.renewing_any(pool, user_id, now)
    renewing = found[0] if found else None
    return offer(
        Entitlement(Tier(user["tier"]), user["tier_expires_at"]),
        tier,
        now=now,
        subscription=True,
        renewing=Tier(renewing.tier) if renewing is not None else None,
    )


async def billing_page(request: web.Request) -> web.Response:
    """The plans with their prices, then Log In With Telegram (or the signed-in user's card plans);
    with card payments off, a page saying so and where to pay instead."""
    settings = request.app[keys.SETTINGS]
    context: dict[str, object] = {
        **common(request, "billing"),
        "cards": settings.stripe_enabled,
        "signed_in": False,
        "plans": plan_rows(settings),
        "card_prices": await card_prices(request, page_locale(request)) if settings.stripe_enabled else {},
        "card_plans": [],
        "portal": False,
    }
    found = await web_session.load(request) if settings.stripe_enabled else None
    if found is not None:
        pool = request.app[keys.POOL]
        plan = await subscriptions_db.me_fields(pool, found.user_id, request.app[keys.CLOCK].now())
        if plan is not None:
            context.update(
                signed_in=True,
                csrf=found.csrf,
                tier=plan["tier"],
                expires=(plan["tierExpiresAt"] or "")[:10],
                card_plans=[
                    tier.value
                    for tier in prices(settings)
                    if (await _card_offer(request, found.user_id, tier)).on_sale
                ],
                portal=await stripe_db.customer_of_user(pool, found.user_id) is not None,
            )
    response = render(request, "billing.html", context)
    response.headers["Content-Security-Policy"] = _content_security_policy(settings)
    response.headers["Cache-Control"] = "no-store"
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """Start Log In With Telegram. Each start writes a Redis key, so it is limited per client
    address (`LOGIN_STARTS_PER_MINUTE`)."""
    _require_stripe(request.app[keys.SETTINGS])
    await count_request(request, "login", request.remote or "unknown", LOGIN_STARTS_PER_MINUTE)
    started = await oidc.start(request)
    response = web.HTTPFound(started.authorize_url)
    oidc.bind_browser(response, started)
    raise response


async def callback(request: web.Request) -> web.StreamResponse:
    if "error" in request.query:
        raise Unauthorized(f"Telegram sign-in was not completed: {request.query['error']}")
    code, state = request.query.get("code"), request.query.get("state")
    if not code or not state:
        raise Unauthorized("the sign-in callback needs code and state")
    identity = await oidc.finish(request, code, state)
    record = await users_db.upsert_seen(
        request.app[keys.POOL],
        identity.user_id,
        username=identity.username,
        first_name=identity.first_name,
        language=pick_locale(None),
    )
    if record["banned"]:
        raise Forbidden("this account is banned")
    created = await web_session.create(request.app, identity.user_id)
    log.info("signed in on the web", extra={"user_id": identity.user_id})
    response = web.HTTPSeeOther("/billing")
    web_session.set_cookie(response, created)
    oidc.unbind_browser(response)
    raise response


async def checkout(request: web.Request) -> web.StreamResponse:
    settings = request.app[keys.SETTINGS]
    _require_stripe(settings)
    signed = await _signed_in(request)
    form = await request.post()
    try:
        tier = Tier(str(form.get("tier", "")))
    except ValueError:
        tier = Tier.FREE
    price = prices(settings).get(tier)
    if price is None:
        raise NotFound(f"no card plan {form.get('tier')!r}")
    sale = await _card_offer(request, signed.user_id, tier)
    if not sale.on_sale:
        raise Conflict(
            f"{tier.value} is not on sale for this account ({sale.value}): it would not add to the plan"
        )
    metadata = {"telegram_user_id": str(signed.user_id), "tier": tier.value}
    base = _base_url(request)
    params: SessionCreateParams = {
        "mode": "subscription",
        "line_items": [{"price": price, "quantity": 1}],
        "client_reference_id": str(signed.user_id),
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
        "success_url": f"{base}/billing?paid=1",
        "cancel_url": f"{base}/billing",
    }
    customer = await stripe_db.customer_of_user(request.app[keys.POOL], signed.user_id)
    if customer is not None:
        params["customer"] = customer
    try:
        made = await request.app[STRIPE].v1.checkout.sessions.create_async(params)
    except stripe.StripeError as exc:
        log.warning("checkout session not made", extra={"user_id": signed.user_id, "error": str(exc)})
        raise web.HTTPBadGateway(reason="Stripe did not make the checkout") from None
    if not made.url:
        raise web.HTTPBadGateway(reason="Stripe gave no checkout URL")
    raise web.HTTPSeeOther(made.url)


async def portal(request: web.Request) -> web.StreamResponse:
    _require_stripe(request.app[keys.SETTINGS])
    signed = await _signed_in(request)
    customer = await stripe_db.customer_of_user(request.app[keys.POOL], signed.user_id)
    if customer is None:
        raise NotFound("no card subscription yet")
    try:
        made = await request.app[STRIPE].v1.billing_portal.sessions.create_async(
            {"customer": customer, "return_url": f"{_base_url(request)}/billing"}
        )
    except stripe.StripeError as exc:
        log.warning("portal session not made", extra={"user_id": signed.user_id, "error": str(exc)})
        raise web.HTTPBadGateway(reason="Stripe did not open the portal") from None
    raise web.HTTPSeeOther(made.url)


async def logout(request: web.Request) -> web.StreamResponse:
    signed = await _signed_in(request)
    await web_session.end(request, signed)
    response = web.HTTPSeeOther("/billing")
    web_session.clear_cookie(response)
    raise response


def setup_pages(app: web.Application) -> None:
    app[CARD_PRICES] = {}
    app.router.add_get("/billing", billing_page, name="billing")
    app.router.add_get("/billing/login", login)
    app.router.add_get("/billing/callback", callback)
    app.router.add_post("/billing/checkout", checkout)
    app.router.add_post("/billing/portal", portal)
    app.router.add_post("/billing/logout", logout)
