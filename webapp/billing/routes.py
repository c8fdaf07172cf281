"""The billing routes: the Stripe webhook, /billing with its sign-in, Checkout and the portal."""

from __future__ import annotations

from aiohttp import web

from webapp.billing import pages, webhook
from webapp.billing.client import stripe_ctx


def setup_billing(app: web.Application) -> None:
    app.cleanup_ctx.append(stripe_ctx)
    app.router.add_post(webhook.PATH, webhook.stripe_webhook)
    pages.setup_pages(app)
