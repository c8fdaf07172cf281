"""The tier table: one place for what free, pro and elite get."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Tier(StrEnum):
    FREE = "free"
    PRO = "pro"
    ELITE = "elite"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Tier.FREE: 0, Tier.PRO: 1, Tier.ELITE: 2}


@dataclass(frozen=True, slots=True)
class TierLimits:
    alert_delay: timedelta
    history: int
    watchlist_size: int | None  # None = unlimited
    custom_thresholds: bool  # own thresholds, alert types, quiet hours
    updates: bool  # HALF/FULL updates and the live Mini App stream
    delivery_priority: int  # lower goes first


TIERS: dict[Tier, TierLimits] = {
    Tier.FREE: TierLimits(timedelta(minutes=15), 10, 5, False, False, 2),
    Tier.PRO: TierLimits(timedelta(minutes=5), 50, 50, True, False, 1),
    Tier.ELITE: TierLimits(timedelta(0), 100, None, True, True, 0),
}


def limits(tier: Tier | str) -> TierLimits:
    return TIERS[Tier(tier)]


def effective_tier(tier: Tier | str, expires_at: datetime | None, now: datetime) -> Tier:
    """A paid tier whose expiry has passed counts as free."""
    tier = Tier(tier)
    if tier is not Tier.FREE and expires_at is not None and expires_at <= now:
        return Tier.FREE
    return tier
