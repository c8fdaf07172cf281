"""Stopping what still renews when an admin revokes a plan or bans a user: the Stars subscription
is cancelled at Telegram (`editUserStarSubscription`), a card subscription at Stripe. What could
not be cancelled is named to the admin with its renewal date."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from aiogram import Bot
from aiogram.utils.i18n import gettext as _

from bot.payments.cancel import cancel_stars_subscription
from bot.payments.card import cancel_card_subscription
from core.payment_texts import date_text
from core.settings import Settings
from core.texts import html_text, tier_name
from core.tiers import Tier
from db import subscriptions as subscriptions_db

STARS = "stars"
STRIPE = "stripe"


async def stop_renewals(
    pool: asyncpg.Pool, bot: Bot, settings: Settings, user_id: int, now: datetime
) -> list[str]:
    """Cancel the user's renewing Stars subscription; lines for the admin saying what was
    cancelled and exactly what still renews."""
    lines: list[str] = []
    stars = await subscriptions_db.renewing(pool, user_id, STARS, now)
    if stars is not None:
        plan = tier_name(Tier(stars.tier))
        if await cancel_stars_subscription(bot, user_id, stars.external_id):
            await subscriptions_db.set_renews(pool, user_id, STARS, False)
            lines.append(
                _("Their {tier} Stars subscription is cancelled: Telegram will not renew it.").format(
                    tier=plan
                )
            )
        else:
            lines.append(
                _(
                    "Telegram did not cancel their {tier} Stars subscription (charge {charge_id}): "
                    "it still renews on {date}."
                ).format(tier=plan, charge_id=html_text(stars.external_id), date=date_text(stars.period_end))
            )
    card = await subscriptions_db.renewing(pool, user_id, STRIPE, now)
    if card is not None and await cancel_card_subscription(settings, card.external_id):
        await subscriptions_db.set_renews(pool, user_id, STRIPE, False)
        lines.append(
            _(
                "Their {tier} card subscription {subscription} is cancelled: Stripe will not charge it again."
            ).format(tier=tier_name(Tier(card.tier)), subscription=html_text(card.external_id))
        )
    elif card is not None:
        lines.append(
            _(
                "Their {tier} card subscription {subscription} still renews on {date}: "
                "cancel it in the Stripe dashboard."
            ).format(
                tier=tier_name(Tier(card.tier)),
                subscription=html_text(card.external_id),
                date=date_text(card.period_end),
            )
        )
    return lines


async def cancel_lower_card(
    pool: asyncpg.Pool, settings: Settings, user_id: int, tier: Tier, now: datetime
) -> str | None:
    """A Stars payment moved the user up to `tier`: their card subscription of a lower tier is
    cancelled at Stripe (one renewing subscription per user). The line telling the user, or None
    when there was none. What Stripe would not cancel is said too."""
    card = await subscriptions_db.renewing(pool, user_id, STRIPE, now)
    if card is None or Tier(card.tier).rank >= tier.rank:
        return None
    if await cancel_card_subscription(settings, card.external_id):
        await subscriptions_db.set_renews(pool, user_id, STRIPE, False)
        return _("Your {tier} card subscription was cancelled: only the new plan renews now.").format(
            tier=tier_name(Tier(card.tier))
        )
    return _("Your {tier} card subscription still renews on {date}; cancel it on the billing page.").format(
        tier=tier_name(Tier(card.tier)), date=date_text(card.period_end)
    )


async def lower_renewals(pool: asyncpg.Pool, user_id: int, tier: Tier, now: datetime) -> list[str]:
    """Lines for the admin who granted `tier`: the user's subscriptions of a lower tier that still
    renew (and charge) while the grant covers them. They are left alone: a grant may be short."""
    lines = []
    for sub in await subscriptions_db.renewing_any(pool, user_id, now):
        if Tier(sub.tier).rank < tier.rank:
            lines.append(
                _("Their {tier} subscription ({provider}) still renews on {date}.").format(
                    tier=tier_name(Tier(sub.tier)),
                    provider="Telegram Stars" if sub.provider == STARS else "Stripe",
                    date=date_text(sub.period_end),
                )
            )
    return lines
