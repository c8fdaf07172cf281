"""The tier table: one place for what free, pro and elite get."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.alerts import AlertType


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


@dataclass(frozen=True, slots=True)
class FeedWindow:
    """What of the alert history a tier sees: alerts detected up to `visible_until` (the push
    delay applied), at most `limit` of them, of `types`. Used by the bot's /alerts and the
    Mini App's feed alike."""

    visible_until: datetime
    limit: int
    types: tuple[str, ...]


def tier_alert_types(tier: Tier | str) -> tuple[AlertType, ...]:
    """The alert types a tier may receive and see: SPIKE for all; the HALF/FULL updates with
    `updates` (elite); the early warning, an alert type users opt into, with `custom_thresholds`
    (pro and elite), like the other choices of alert types."""
    tier_limits = limits(tier)
    return tuple(
        t
        for t in AlertType
        if (tier_limits.updates or not t.is_update)
        and (tier_limits.custom_thresholds or t is not AlertType.EARLY)
    )


def feed_window(tier: Tier | str, now: datetime) -> FeedWindow:
    tier_limits = limits(tier)
    types = tuple(t.value for t in tier_alert_types(tier))
    return FeedWindow(now - tier_limits.alert_delay, tier_limits.history, types)


# Elite's alerts and prices arrive on the live socket; its feed still asks again this often, for
# outcomes and whatever a broken socket missed.
LIVE_FEED_REFRESH = timedelta(minutes=1)
MIN_FEED_REFRESH = timedelta(seconds=15)


def feed_refresh(tier: Tier | str) -> timedelta:
    """How often the Mini App's feed asks for the tier's window again: a fifteenth of the tier's
    delay (free every minute, pro every 20 s), so an alert reaches an open feed at most that
    much after the tier's push; never more often than every 15 s."""
    delay = limits(tier).alert_delay
    if not delay:
        return LIVE_FEED_REFRESH
    return max(MIN_FEED_REFRESH, delay / 15)
