"""What is on sale for Stars and the invoice payload that names it.

A plan is a paid tier sold either as a monthly Stars subscription (renewed by Telegram every
30 days) or as a one-off 30-day pass. The payload carries plan, kind, price and buyer, so the
pre-checkout answer can check the invoice against today's prices without any stored state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from core.settings import Settings
from core.tiers import Tier

CURRENCY = "XTR"
SUBSCRIPTION_PERIOD = 2_592_000  # seconds; the only period Telegram allows (30 days)
PERIOD = timedelta(seconds=SUBSCRIPTION_PERIOD)
MAX_SUBSCRIPTION_STARS = 10_000  # Telegram's cap per subscription period
PAYLOAD_VERSION = "v1"


class Kind(StrEnum):
    SUBSCRIPTION = "subscription"
    PASS = "pass"


PAID_TIERS = (Tier.PRO, Tier.ELITE)


def price(settings: Settings, tier: Tier) -> int:
    """Stars per 30 days for a paid tier, from STARS_PRICE_PRO / STARS_PRICE_ELITE."""
    return {Tier.PRO: settings.stars_price_pro, Tier.ELITE: settings.stars_price_elite}[tier]


def subscription_allowed(stars: int) -> bool:
    return stars <= MAX_SUBSCRIPTION_STARS


@dataclass(frozen=True, slots=True)
class Payload:
    kind: Kind
    tier: Tier
    price: int
    user_id: int

    def encode(self) -> str:
        return f"{PAYLOAD_VERSION}:{self.kind.value}:{self.tier.value}:{self.price}:{self.user_id}"


class BadPayload(ValueError):
    """The invoice payload is not one this bot made."""


def parse_payload(raw: str) -> Payload:
    """`v1:<kind>:<tier>:<price>:<user_id>` → Payload; BadPayload on anything else. An unknown
    tier or kind raises too: the plan does not exist."""
    parts = raw.split(":")
    if len(parts) != 5 or parts[0] != PAYLOAD_VERSION:
        raise BadPayload(raw)
    _, kind, tier, stars, user_id = parts
    if not stars.isdigit() or not user_id.isdigit():
        raise BadPayload(raw)
    try:
        parsed_tier = Tier(tier)
        parsed_kind = Kind(kind)
    except ValueError:
        raise BadPayload(raw) from None
    if parsed_tier not in PAID_TIERS:
        raise BadPayload(raw)
    return Payload(parsed_kind, parsed_tier, int(stars), int(user_id))


class Refusal(StrEnum):
    """Why a pre-checkout query is refused; each has a localized text in core/payment_texts.py."""

    UNKNOWN_PLAN = "unknown_plan"
    PRICE_CHANGED = "price_changed"
    BANNED = "banned"
    OTHER_USER = "other_user"
    LOWER = "lower"  # the user has a higher plan: a lower one would take it away
    FOREVER = "forever"  # the user has this plan with no end
    SUBSCRIBED = "subscribed"  # this plan already renews by subscription


def check_checkout(
    settings: Settings,
    *,
    payload: str,
    currency: str,
    total_amount: int,
    payer_id: int,
    payer_banned: bool,
) -> Refusal | None:
    """None when the invoice may be paid; otherwise the reason it may not."""
    try:
        parsed = parse_payload(payload)
    except BadPayload:
        return Refusal.UNKNOWN_PLAN
    if payer_banned:
        return Refusal.BANNED
    if parsed.user_id != payer_id:
        return Refusal.OTHER_USER
    current = price(settings, parsed.tier)
    if currency != CURRENCY or parsed.price != current or total_amount != current:
        return Refusal.PRICE_CHANGED
    if parsed.kind is Kind.SUBSCRIPTION and not subscription_allowed(current):
        return Refusal.UNKNOWN_PLAN
    return None
