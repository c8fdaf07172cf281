"""The StripeClient the webapp calls Stripe with, opened and closed with the app.

It speaks to `STRIPE_API_BASE` (Stripe itself, or a local look-alike in tests) over aiohttp,
with the library's own bounded retries; it exists only when STRIPE_SECRET_KEY is set."""

from __future__ import annotations

from collections.abc import AsyncIterator

import stripe
from aiohttp import web

from webapp import keys

STRIPE = web.AppKey("stripe", stripe.StripeClient)
NETWORK_RETRIES = 2


async def stripe_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    if settings.stripe_secret_key is None:
        yield
        return
    http = stripe.AIOHTTPClient()
    app[STRIPE] = stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base.rstrip("/")},
        http_client=http,
        max_network_retries=NETWORK_RETRIES,
    )
    try:
        yield
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]  # stripe leaves it unannotated
