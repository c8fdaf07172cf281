"""What a Stars purchase would be for this user, by the one entitlement rule
(`core.entitlements.offer`), with their plan and renewing subscriptions (Stars or card) read
from the database. `/subscribe` shows only what is on sale; the pass button and the pre-checkout ask
again, so an old invoice cannot lower a plan."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bot.models import BotUser
from core.entitlements import Entitlement, Offer, offer
from core.plans import Kind, Refusal
from core.tiers import Tier
from db import subscriptions as subscriptions_db

REFUSALS = {Offer.LOWER: Refusal.LOWER, Offer.FOREVER: Refusal.FOREVER, Offer.SUBSCRIBED: Refusal.SUBSCRIBED}


async def renewing_subscription(
    pool: asyncpg.Pool, user_id: int, now: datetime
) -> subscriptions_db.Subscription | None:
    """The user's renewing subscription of the highest tier (Stars or card): the one a new
    subscription would duplicate or replace."""
    found = await subscriptions_db.renewing_any(pool, user_id, now)
    return found[0] if found else None


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
    found = offer_for(user, tier, kind, now, await renewing_subscription(pool, user.id, now))
    return REFUSALS.get(found)
