"""What a Stars purchase would be for this user, by the one entitlement rule
(`volspike.entitlements.offer`), with their plan and renewing Stars subscription read from the
database. `/subscribe` shows only what is on sale; the pass button and the pre-checkout ask again,
so an old invoice cannot lower a plan."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bot.models import BotUser
from bot.payments.plans import Kind, Refusal
from db import subscriptions as subscriptions_db
from volspike.entitlements import Entitlement, Offer, offer
from volspike.tiers import Tier

STARS = "stars"

REFUSALS = {Offer.LOWER: Refusal.LOWER, Offer.FOREVER: Refusal.FOREVER, Offer.SUBSCRIBED: Refusal.SUBSCRIBED}


async def renewing_stars(
    pool: asyncpg.Pool, user_id: int, now: datetime
) -> subscriptions_db.Subscription | None:
    return await subscriptions_db.renewing(pool, user_id, STARS, now)


def offer_for(
    user: BotUser, tier: Tier, kind: Kind, now: datetime, renewing: subscriptions_db.Subscription | None
) -> Offer:
    return offer(
        Entitlement(user.tier, user.tier_expires_at),
        tier,
        now=now,
        subscription=kind is Kind.SUBSCRIPTION,
        renewing=Tier(renewing.tier) if renewing is not None else None,
    )


async def refusal_for(
    pool: asyncpg.Pool, user: BotUser, tier: Tier, kind: Kind, now: datetime
) -> Refusal | None:
    """Why this user may not buy `tier` as `kind` now; None when it is on sale for them."""
    found = offer_for(user, tier, kind, now, await renewing_stars(pool, user.id, now))
    return REFUSALS.get(found)
