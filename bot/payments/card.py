"""Cancelling a user's card subscription at Stripe (`DELETE /v1/subscriptions/{id}` through
`stripe.StripeClient`) when an admin revokes their plan or bans them. The bot opens a client only
for that call (a rare admin action) and closes it after; without STRIPE_SECRET_KEY it does nothing."""

from __future__ import annotations

import logging

import stripe

from core.settings import Settings

log = logging.getLogger(__name__)

NETWORK_RETRIES = 2


async def cancel_card_subscription(settings: Settings, subscription_id: str) -> bool:
    """Cancel at once; False (logged) when Stripe is off or refused it."""
    if settings.stripe_secret_key is None:
        return False
    http = stripe.AIOHTTPClient()
    client = stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base.rstrip("/")},
        http_client=http,
        max_network_retries=NETWORK_RETRIES,
    )
    try:
        await client.v1.subscriptions.cancel_async(subscription_id)
    except stripe.StripeError as exc:
        log.warning(
            "card subscription not cancelled", extra={"subscription": subscription_id, "error": str(exc)}
        )
        return False
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]  # stripe leaves it unannotated
    return True
