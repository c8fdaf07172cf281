"""The tier arithmetic of payments, as pure functions of the state before and the event.

A pass adds 30 days from the later of now and the current expiry when it buys the tier the user
already has; a pass for another tier starts now. A subscription payment (first or renewal) sets the
expiry to the `subscription_expiration_date` Telegram sends. A refund undoes its payment: when
nothing changed the tier since, the state before the payment comes back; when later changes
happened (a renewal, another pass) only the 30 days that payment bought are taken off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.plans import PERIOD, Kind
from core.tiers import Tier, effective_tier


@dataclass(frozen=True, slots=True)
class TierState:
    tier: Tier
    expires_at: datetime | None  # None: no expiry (free, or granted for ever)

    def effective(self, now: datetime) -> TierState:
        tier = effective_tier(self.tier, self.expires_at, now)
        return self if tier is self.tier else TierState(Tier.FREE, None)


def after_payment(
    before: TierState,
    *,
    tier: Tier,
    kind: Kind,
    now: datetime,
    subscription_expires_at: datetime | None,
) -> TierState:
    current = before.effective(now)
    if kind is Kind.SUBSCRIPTION and subscription_expires_at is not None:
        return TierState(tier, subscription_expires_at)
    if current.tier is tier and current.expires_at is None:
        return current  # already has it for ever; the payment changes nothing to lose
    start = now
    if current.tier is tier and current.expires_at is not None:
        start = max(now, current.expires_at)
    return TierState(tier, start + PERIOD)


def after_refund(current: TierState, *, before: TierState, after: TierState) -> TierState:
    """The state once a payment that moved `before` → `after` is refunded."""
    if current == after:
        return before
    if current.tier is after.tier and current.expires_at is not None:
        return TierState(current.tier, current.expires_at - PERIOD)
    return current
