"""Entitlements: the one rule for what a payment, a grant, a refund, a revocation or an expiry does
to a user's plan. Stars (bot/payments), Stripe (webapp/billing) and the admin commands all call
these pure functions with the state before and the event; none of them does arithmetic of its own.

The rule: **a purchase or a grant never lowers or shortens what a user has.**

- the same tier: the later of the two ends wins (a pass adds its 30 days after the current end);
  "for ever" (no end) beats any date;
- a higher tier: starts now, and runs at least until the lower plan would have ended, so the days
  the user had are never lost;
- a lower tier: the higher plan stays as it is. It is not on sale (`offer` refuses it, and the
  pre-checkout and the web checkout ask `offer`); a grant of a lower tier changes nothing.

Only the explicit take-aways lower a plan: a refund (it undoes its own payment), an admin's
revoke or ban, and the expiry of the end date.

One renewing Stars subscription per user: `offer` refuses a second subscription to the tier that
already renews and a subscription to a lower tier, and calls a subscription to a higher tier a
change (the old one is cancelled once the new one is paid).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.tiers import Tier, effective_tier


@dataclass(frozen=True, slots=True)
class Entitlement:
    tier: Tier
    expires_at: datetime | None  # None: no end (free, or granted for ever)

    def effective(self, now: datetime) -> Entitlement:
        """The plan as it stands at `now`: a paid tier whose end has passed is free."""
        tier = effective_tier(self.tier, self.expires_at, now)
        return self if tier is self.tier else FREE

    @property
    def forever(self) -> bool:
        return self.tier is not Tier.FREE and self.expires_at is None


FREE = Entitlement(Tier.FREE, None)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two ends, where None (no end) is the latest."""
    if a is None or b is None:
        return None
    return max(a, b)


def _give(current: Entitlement, tier: Tier, until: datetime | None) -> Entitlement:
    """`tier` until `until` (None: for ever) on top of `current` (already effective), never less."""
    if tier is Tier.FREE or tier.rank < current.tier.rank:
        return current
    if tier is current.tier:
        return Entitlement(tier, _later(current.expires_at, until))
    # An upgrade: from now, at least as long as the lower paid plan would have run.
    if current.tier is Tier.FREE:
        return Entitlement(tier, until)
    return Entitlement(tier, _later(current.expires_at, until))


def after_pass(current: Entitlement, tier: Tier, *, now: datetime, period: timedelta) -> Entitlement:
    """A one-off pass of `period` for `tier`: the same tier adds the period after its end."""
    have = current.effective(now)
    if tier is have.tier and have.expires_at is not None:
        return Entitlement(tier, max(now, have.expires_at) + period)
    return _give(have, tier, now + period)


def after_paid_until(current: Entitlement, tier: Tier, *, now: datetime, until: datetime) -> Entitlement:
    """A subscription payment (Stars or card) that pays `tier` until `until`."""
    return _give(current.effective(now), tier, until)


def after_grant(current: Entitlement, tier: Tier, *, now: datetime, until: datetime | None) -> Entitlement:
    """An admin's grant of `tier` until `until` (None: for ever)."""
    return _give(current.effective(now), tier, until)


def after_revoke(current: Entitlement) -> Entitlement:
    """An admin's revoke (and a ban): back to free."""
    return FREE


def after_refund(
    current: Entitlement, *, before: Entitlement, after: Entitlement, period: timedelta
) -> Entitlement:
    """A payment that moved `before` → `after` is refunded. When nothing changed the plan since,
    the state before the payment comes back; when later changes happened (a renewal, another
    pass, a grant) only the period that payment bought is taken off the same tier."""
    if current == after:
        return before
    if current.tier is after.tier and current.expires_at is not None and after.expires_at is not None:
        return Entitlement(current.tier, current.expires_at - period)
    return current


class Offer(StrEnum):
    """What buying a plan would be for this user; the refusals are not on sale."""

    NEW = "new"  # free → paid
    RENEWAL = "renewal"  # the tier the user has: more time after the current end
    UPGRADE = "upgrade"  # a higher tier, from now
    CHANGE = "change"  # a subscription to a higher tier replacing the one that renews
    LOWER = "lower"  # refused: the user has a higher tier
    FOREVER = "forever"  # refused: the user has this tier with no end
    SUBSCRIBED = "subscribed"  # refused: this tier already renews by subscription

    @property
    def on_sale(self) -> bool:
        return self in (Offer.NEW, Offer.RENEWAL, Offer.UPGRADE, Offer.CHANGE)


def offer(
    current: Entitlement,
    tier: Tier,
    *,
    now: datetime,
    subscription: bool,
    renewing: Tier | None,
) -> Offer:
    """What buying `tier` (a subscription, or a pass) would do. `renewing` is the tier of the
    user's renewing subscription, if any."""
    have = current.effective(now)
    if subscription and renewing is not None:
        if tier is renewing:
            return Offer.SUBSCRIBED
        if tier.rank < renewing.rank:
            return Offer.LOWER
    if tier.rank < have.tier.rank or (renewing is not None and tier.rank < renewing.rank):
        return Offer.LOWER
    if tier is have.tier and have.forever:
        return Offer.FOREVER
    if subscription and renewing is not None:
        return Offer.CHANGE
    if have.tier is Tier.FREE:
        return Offer.NEW
    return Offer.RENEWAL if tier is have.tier else Offer.UPGRADE
