"""Which alert figures and times make sense: one rule for every alert that enters the system.

Ingest's detector only makes alerts with positive, known figures, `ratio = current / previous`
and an hour in a sane range. An alert from anywhere else (the original product's ingest
endpoint) must meet the same rule, and the publisher sets aside (dead-letters) any stored row
that does not, rather than fail on it. `problem` names the first field that breaks the rule, or
None. When an alert may be detected relative to its hour is `timing_problem`: the endpoint asks
it of what it is sent; the publisher does not, because ingest's own FULL_UPDATE can come well
after its hour's close (it waits for the hour's missing minutes).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from core.alerts import Alert, AlertType

MAX_FIGURE = 1e15  # USD volumes and prices above a quadrillion are nobody's market
MAX_FUNDING = 1.0  # a funding rate is a fraction; Binance caps it far below 100 %
RATIO_ROUNDING = 0.01  # the original product sent ratios rounded to two decimals
EARLIEST = datetime(2017, 1, 1, tzinfo=UTC)  # before any crypto perpetual listed on Binance
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _positive(value: float) -> bool:
    return math.isfinite(value) and 0 < value < MAX_FIGURE


def problem(alert: Alert) -> tuple[str, str] | None:
    """`(field, message)` in the original JSON's field names, or None when the alert holds."""
    for field, value in (
        ("currentVolume", alert.current_volume),
        ("previousVolume", alert.previous_volume),
        ("price", alert.price),
    ):
        if not _positive(value):
            return field, f"must be a finite number above 0 and below {MAX_FIGURE:g}"
    expected = alert.current_volume / alert.previous_volume
    if not math.isfinite(alert.ratio) or abs(alert.ratio - expected) > max(RATIO_ROUNDING, expected * 1e-3):
        return "volumeRatio", f"must be currentVolume / previousVolume ({expected:.4g})"
    if alert.funding_rate is not None and not (
        math.isfinite(alert.funding_rate) and abs(alert.funding_rate) < MAX_FUNDING
    ):
        return "fundingRate", "must be a finite fraction between -1 and 1"
    if not EARLIEST <= alert.hour < LATEST:
        return "hourTimestamp", f"must be between {EARLIEST.year} and {LATEST.year}"
    if alert.hour.minute or alert.hour.second or alert.hour.microsecond:
        return "hourTimestamp", "must be the start of an hour"
    return None


def timing_problem(alert: Alert) -> tuple[str, str] | None:
    """`(field, message)` when the detection time cannot belong to the alert's hour: a SPIKE or
    HALF_UPDATE is detected inside its hour, a FULL_UPDATE from the hour's start up to an hour
    after its close."""
    latest = alert.hour + (2 * HOUR if alert.alert_type is AlertType.FULL_UPDATE else HOUR)
    if not alert.hour <= alert.detected_at <= latest:
        return "timestamp", "must fall in the hour of hourTimestamp (up to an hour after it for FULL_UPDATE)"
    return None
