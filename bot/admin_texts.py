"""Texts about a user's plan for admins and for the user an admin acted on (call inside an i18n
context): tier names translated, dates written out, no raw values."""

from __future__ import annotations

from aiogram.utils.i18n import gettext as _

from core.entitlements import Entitlement
from core.payment_texts import date_text
from core.texts import tier_name
from core.tiers import Tier


def plan_text(plan: Entitlement) -> str:
    """ "Pro until 2026-04-07 12:00 UTC", "Elite with no end date", "Free"."""
    if plan.tier is Tier.FREE:
        return tier_name(Tier.FREE)
    if plan.expires_at is None:
        return _("{tier} with no end date").format(tier=tier_name(plan.tier))
    return _("{tier} until {date}").format(tier=tier_name(plan.tier), date=date_text(plan.expires_at))


def granted_text(plan: Entitlement) -> str:
    return _("The VolSpike team gave you {plan}. See /subscription.").format(plan=plan_text(plan))


def revoked_text(tier: Tier) -> str:
    return _(
        "The VolSpike team ended your {tier} plan; you are on the free plan now. "
        "Questions about a payment: /paysupport."
    ).format(tier=tier_name(tier))


def banned_text() -> str:
    return _(
        "Your access to VolSpike has been suspended: you no longer receive alerts, and any "
        "subscription is cancelled. For a payment question, /paysupport still reaches us."
    )


def unbanned_text() -> str:
    return _("Your access to VolSpike is restored. Send /status to see your plan.")
