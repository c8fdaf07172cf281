"""The what-if window and rate: the last 30 days of closed hours, and alerts a day over the part
of it that has candles (a deployment younger than 30 days divides by its own age)."""

from __future__ import annotations

from datetime import datetime, timedelta

from volspike.clock import hour_floor

WINDOW_DAYS = 30


def window(now: datetime) -> tuple[datetime, datetime]:
    """[start, end): the last WINDOW_DAYS days up to the forming hour's start."""
    end = hour_floor(now)
    return end - timedelta(days=WINDOW_DAYS), end


def covered_days(start: datetime, end: datetime, first_hour: datetime | None) -> float:
    """Days of the window with stored hours (0 without any)."""
    if first_hour is None:
        return 0.0
    return (end - max(start, first_hour)).total_seconds() / 86_400


def per_day(hours: int, days: float) -> float | None:
    return None if days <= 0 else hours / days
