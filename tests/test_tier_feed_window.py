"""The alert-history window of each tier: one rule for the bot's /alerts and the Mini App."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.tiers import Tier, feed_refresh, feed_window

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_free_sees_ten_spikes_fifteen_minutes_late() -> None:
    window = feed_window(Tier.FREE, NOW)
    assert window.visible_until == NOW - timedelta(minutes=15)
    assert window.limit == 10 and window.types == ("SPIKE",)


def test_pro_sees_fifty_spikes_five_minutes_late() -> None:
    window = feed_window("pro", NOW)
    assert window.visible_until == NOW - timedelta(minutes=5)
    assert window.limit == 50 and window.types == ("SPIKE", "EARLY")  # the early warning: pro and elite


def test_elite_sees_a_hundred_alerts_of_every_type_live() -> None:
    window = feed_window(Tier.ELITE, NOW)
    assert window.visible_until == NOW
    assert window.limit == 100 and window.types == ("SPIKE", "HALF_UPDATE", "FULL_UPDATE", "EARLY")


def test_each_tier_refreshes_its_feed_at_its_own_pace() -> None:
    # a fifteenth of the delay: an alert reaches an open feed at most that much after the push
    assert feed_refresh(Tier.FREE) == timedelta(minutes=1)
    assert feed_refresh(Tier.PRO) == timedelta(seconds=20)
    # elite's alerts and prices come live; the feed still asks every minute for outcomes
    assert feed_refresh(Tier.ELITE) == timedelta(minutes=1)
