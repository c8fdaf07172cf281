"""The what-if of own thresholds (`db.what_if`): its window, the last 30 days of closed hours;
its rate, alerts a day over the part of the window that has candles (a deployment younger than
30 days divides by its own age); and its sentence, which the bot's /settings and the Mini App's
settings page (through GET /api/what-if) both write with `what_if_text`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from core.clock import hour_floor
from core.number_format import format_change

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


def what_if_text(
    alerts_per_day: float | None, days: float, median_1h: float | None, t: Callable[[str], str]
) -> str:
    """ "With these thresholds you would have had 2.4 alerts a day over the last 30 days; median
    move after 1 h: +0.42%." in `t`'s language."""
    if alerts_per_day is None:
        return t("Not enough stored candles yet to say how often these thresholds would have fired.")
    shown_days = min(WINDOW_DAYS, max(1, round(days)))
    text = t(
        "With these thresholds you would have had {count} alerts a day over the last {days} days"
    ).format(count=f"{alerts_per_day:.1f}", days=shown_days)
    median = t("no outcome yet") if median_1h is None else format_change(median_1h)
    return text + "; " + t("median move after 1 h: {median}").format(median=median) + "."
