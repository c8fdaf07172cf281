"""GET /api/plans: the tier table, with Stars prices, the caller's current plan, and which plans
the entitlement rule sells to the caller (the Stars invoice asks the same `stars_offer`)."""

from __future__ import annotations

from aiohttp import web

from core.entitlements import Entitlement, Offer, offer
from core.plans import PAID_TIERS, Kind
from core.tiers import TIERS, Tier
from db import subscriptions as subscriptions_db
from webapp import keys
from webapp.api.models import CurrentPlan, Plan, PlansPage
from webapp.api.spec import API, respond
from webapp.api.viewer import delay_minutes
from webapp.auth import WebUser, current_user


async def renewing_tier(request: web.Request, user: WebUser) -> Tier | None:
    """The tier of the user's renewing subscription (Stars or card), the highest if several."""
    now = request.app[keys.CLOCK].now()
    found = await subscriptions_db.renewing_any(request.app[keys.POOL], user.id, now)
    return Tier(found[0].tier) if found else None


def stars_offer(
    request: web.Request, user: WebUser | None, tier: Tier, kind: Kind, renewing: Tier | None
) -> Offer:
    """What buying `tier` with Stars would be for `user` (None: a newcomer), by the one rule."""
    have = Entitlement(Tier.FREE, None) if user is None else Entitlement(user.tier, user.tier_expires_at)
    now = request.app[keys.CLOCK].now()
    return offer(have, tier, now=now, subscription=kind is Kind.SUBSCRIPTION, renewing=renewing)


@API.route("GET", "/api/plans", response=PlansPage, tag="account")
async def plans(request: web.Request) -> web.Response:
    """What each tier gives, what the caller has (public view: free), and which plans are on sale
    for the caller (`onSale`, with `offer` saying what buying would be or why it is refused)."""
    settings = request.app[keys.SETTINGS]
    prices = {Tier.FREE: None, Tier.PRO: settings.stars_price_pro, Tier.ELITE: settings.stars_price_elite}
    user = current_user(request)
    renewing = None if user is None else await renewing_tier(request, user)
    offers = {tier: stars_offer(request, user, tier, Kind.SUBSCRIPTION, renewing) for tier in PAID_TIERS}
    return respond(
        PlansPage(
            plans=[
                Plan(
                    tier=tier.value,
                    delay_minutes=delay_minutes(rules),
                    history=rules.history,
                    watchlist=rules.watchlist_size,
                    own_thresholds=rules.custom_thresholds,
                    updates=rules.updates,
                    live_stream=rules.updates,
                    stars_price=prices[tier],
                    on_sale=tier in offers and offers[tier].on_sale,
                    offer=offers[tier].value if tier in offers else None,
                )
                for tier, rules in TIERS.items()
            ],
            current=CurrentPlan(
                tier=Tier.FREE.value if user is None else user.tier.value,
                tier_expires_at=None if user is None or user.tier is Tier.FREE else user.tier_expires_at,
            ),
        )
    )
