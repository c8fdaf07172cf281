"""The what-if sentence for a user's thresholds (`db.what_if`): the bot's /settings and the Mini
App's settings page (through GET /api/what-if) both write it with this function."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from db.what_if import what_if
from volspike.number_format import format_change
from volspike.what_if import WINDOW_DAYS, covered_days, per_day, window


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


async def estimate(
    pool: asyncpg.Pool, now: datetime, multiple: float, min_volume: float, defaults: tuple[float, float]
) -> tuple[int, float, float | None, float | None, int]:
    """`(alerts, days, alerts a day, median move after 1 h, alerts with a known move)`;
    `defaults`: the service's spike multiple and minimum volume."""
    start, end = window(now)
    found = await what_if(
        pool, start, end, multiple, min_volume, default_multiple=defaults[0], default_volume=defaults[1]
    )
    days = covered_days(start, end, found.first_hour)
    return found.hours, days, per_day(found.hours, days), found.median_1h, found.known
