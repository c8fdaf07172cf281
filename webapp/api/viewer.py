"""Who is looking: the tier rules of the caller (a signed-in user, or the public view = free)."""

from __future__ import annotations

from aiohttp import web

from volspike.tiers import Tier, TierLimits, limits
from webapp.api.models import Limits
from webapp.auth import current_user


def viewer_tier(request: web.Request) -> Tier:
    user = current_user(request)
    return Tier.FREE if user is None else user.tier


def delay_minutes(tier_limits: TierLimits) -> int:
    return int(tier_limits.alert_delay.total_seconds() // 60)


def limits_model(tier: Tier) -> Limits:
    tier_limits = limits(tier)
    return Limits(
        delay_minutes=delay_minutes(tier_limits),
        history=tier_limits.history,
        watchlist=tier_limits.watchlist_size,
    )
