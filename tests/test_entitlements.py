"""The one entitlement rule (core.entitlements), as pure functions: what a pass, a
subscription payment, a grant, a refund and a revoke do to a plan, and what is on sale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.entitlements import (
    FREE,
    Entitlement,
    Offer,
    after_grant,
    after_paid_until,
    after_pass,
    after_refund,
    after_revoke,
    offer,
)
from core.tiers import Tier

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
PERIOD = timedelta(days=30)
PRO = Tier.PRO
ELITE = Tier.ELITE


def pro(days: float) -> Entitlement:
    return Entitlement(PRO, NOW + timedelta(days=days))


def elite(days: float | None) -> Entitlement:
    return Entitlement(ELITE, None if days is None else NOW + timedelta(days=days))


def test_a_pass_extends_from_the_later_of_now_and_the_end_and_a_refund_undoes_it():
    first = after_pass(FREE, PRO, now=NOW, period=PERIOD)
    assert first == pro(30)
    twice = after_pass(first, PRO, now=NOW, period=PERIOD)
    assert twice == pro(60)
    assert after_pass(first, PRO, now=NOW + 2 * PERIOD, period=PERIOD) == Entitlement(PRO, NOW + 3 * PERIOD)
    assert after_refund(first, before=FREE, after=first, period=PERIOD) == FREE
    assert after_refund(twice, before=FREE, after=first, period=PERIOD) == pro(30)
    assert after_refund(FREE, before=FREE, after=first, period=PERIOD) == FREE


def test_a_lower_purchase_never_lowers_a_higher_plan():
    assert after_pass(elite(10), PRO, now=NOW, period=PERIOD) == elite(10)
    assert after_pass(elite(None), PRO, now=NOW, period=PERIOD) == elite(None)
    assert after_paid_until(elite(10), PRO, now=NOW, until=NOW + PERIOD) == elite(10)


def test_an_upgrade_runs_at_least_as_long_as_the_plan_it_replaces():
    assert after_pass(pro(5), ELITE, now=NOW, period=PERIOD) == elite(30)
    assert after_pass(pro(50), ELITE, now=NOW, period=PERIOD) == elite(50)
    assert after_grant(pro(28), ELITE, now=NOW, until=NOW + timedelta(days=2)) == elite(28)


def test_a_shorter_grant_keeps_the_paid_end():
    assert after_grant(pro(28), PRO, now=NOW, until=NOW + timedelta(days=2)) == pro(28)
    assert after_grant(pro(2), PRO, now=NOW, until=NOW + timedelta(days=28)) == pro(28)
    assert after_grant(pro(28), PRO, now=NOW, until=None) == Entitlement(PRO, None)
    assert after_grant(elite(None), PRO, now=NOW, until=None) == elite(None)
    assert after_grant(elite(3), PRO, now=NOW, until=NOW + PERIOD) == elite(3)


def test_a_subscription_payment_never_shortens_the_same_tier():
    assert after_paid_until(pro(40), PRO, now=NOW, until=NOW + PERIOD) == pro(40)
    assert after_paid_until(pro(10), PRO, now=NOW, until=NOW + PERIOD) == pro(30)
    assert after_paid_until(FREE, ELITE, now=NOW, until=NOW + PERIOD) == elite(30)


def test_an_expired_plan_counts_as_free():
    lapsed = pro(-1)
    assert after_grant(lapsed, PRO, now=NOW, until=NOW + timedelta(days=2)) == pro(2)
    assert offer(lapsed, PRO, now=NOW, subscription=False, renewing=None) is Offer.NEW


def test_revoke_is_free():
    assert after_revoke(elite(None)) == FREE


@pytest.mark.parametrize(
    ("have", "tier", "subscription", "renewing", "expected"),
    [
        (FREE, PRO, True, None, Offer.NEW),
        (pro(10), PRO, False, None, Offer.RENEWAL),
        (pro(10), ELITE, False, None, Offer.UPGRADE),
        (elite(10), PRO, False, None, Offer.LOWER),
        (elite(10), PRO, True, None, Offer.LOWER),
        (elite(None), ELITE, False, None, Offer.FOREVER),
        (pro(10), PRO, True, PRO, Offer.SUBSCRIBED),
        (pro(10), ELITE, True, PRO, Offer.CHANGE),
        (elite(10), PRO, True, ELITE, Offer.LOWER),
        (pro(10), PRO, False, PRO, Offer.RENEWAL),
        (pro(-1), PRO, False, ELITE, Offer.LOWER),
    ],
)
def test_only_upgrades_and_renewals_are_on_sale(have, tier, subscription, renewing, expected):
    found = offer(have, tier, now=NOW, subscription=subscription, renewing=renewing)
    assert found is expected
    assert found.on_sale is (expected in (Offer.NEW, Offer.RENEWAL, Offer.UPGRADE, Offer.CHANGE))
