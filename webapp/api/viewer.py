"""Who is looking: the tier rules of the caller (a signed-in user, or the public view = free)."""

from __future__ import annotations

from aiohttp import web

from core.i18n import pick_locale
from core.tiers import Tier, TierLimits, limits
from webapp.api.models import Limits
from webapp.auth import current_user
from webapp.locale import page_locale


def viewer_tier(request: web.Request) -> Tier:
    user = current_user(request)
    return Tier.FREE if user is None else user.tier


def viewer_locale(request: web.Request) -> str:
    """The caller's language: the signed-in user's bot language, else the page's (public view)."""
    user = current_user(request)
    return page_locale(request) if user is None else pick_locale(user.language)


def delay_minutes(tier_limits: TierLimits) -> int:
    return int(tier_limits.alert_delay.total_seconds() // 60)


def limits_model(tier: Tier) -> Limits:
    tier_limits = limits(tier)
    return Limits(
        delay_minutes=delay_minutes(tier_limits),
        history=tier_limits.history,
        watchlist=tier_limits.watchlist_size,
    )
