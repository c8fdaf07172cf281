"""GET /api/plans: the tier table, with Stars prices, and the caller's current plan."""

from __future__ import annotations

from aiohttp import web

from core.tiers import TIERS, Tier
from webapp import keys
from webapp.api.models import CurrentPlan, Plan, PlansPage
from webapp.api.spec import API, respond
from webapp.api.viewer import delay_minutes
from webapp.auth import current_user


@API.route("GET", "/api/plans", response=PlansPage, tag="account")
async def plans(request: web.Request) -> web.Response:
    """What each tier gives and what the caller has (public view: free)."""
    settings = request.app[keys.SETTINGS]
    prices = {Tier.FREE: None, Tier.PRO: settings.stars_price_pro, Tier.ELITE: settings.stars_price_elite}
    user = current_user(request)
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
                )
                for tier, rules in TIERS.items()
            ],
            current=CurrentPlan(
                tier=Tier.FREE.value if user is None else user.tier.value,
                tier_expires_at=None if user is None or user.tier is Tier.FREE else user.tier_expires_at,
            ),
        )
    )
