"""An alert's context: what a trader needs to judge it without opening five other apps.

Computed from the data at the moment the alert fires (ingest/context.py gathers the inputs),
stored with the alert (`alerts.context`, jsonb) and shown in the bot message, the Mini App card
and the API. Pure: inputs in, figures and words out.

Every figure is optional. A missing input (not yet 30 days of data, a refused or slow request,
a minute of the hour not seen) leaves its figure None, which every surface shows as unknown,
never as zero.

- `taker_buy_share`: the taker-buy share of the hour's quote volume so far (kline `Q` over `q`,
  summed over the hour's minutes), 0..1: above one half, buyers hit the asks.
- `price_change_1h`, `price_change_24h`: the price at the alert against the hour's open and the
  price 24 h earlier, in percent.
- `open_interest_change_1h`: open interest now against the hour's start, in percent: from the
  figure ingest keeps warm while the hour nears the rule when it is fresh at the alert
  (`warm_open_interest_change`), replaced by an exact one fetched after the alert is published;
  `open_interest_as_of` is the exchange time (ms since the epoch) of the open interest it used
  (see docs/behaviour.md).
- `funding_percentile`: the share of the symbol's funding-rate snapshots of the last 30 days at
  or below the rate at the alert, in percent.
- `turnover_24h`: quote volume of the last 24 h (the 23 closed hours before this one and this
  hour so far), in USD.
- `rank_top_percent`: how unusual this hour's volume is for this symbol at this time of day: its
  place among the same UTC hour of the last 30 days, as "top X %".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from core.number_format import format_change, format_usd

RANK_DAYS = 30  # the same UTC hour on each of the last 30 days
RANK_MIN_DAYS = 27  # known with at least 27 of those 30 hours stored (a day or three of downtime)
FUNDING_DAYS = 30
FUNDING_MIN_DAYS = 29  # the symbol's snapshots must reach back at least 29 days
# open interest kept warm before the crossing (ingest/open_interest.py)
WARM_FRACTION = 2 / 3  # an hour is near the rule at 2/3 of both its multiple and its minimum volume
OPEN_INTEREST_MAX_AGE_MS = 60_000  # a warm figure older than this at the alert is not used

# JSON (jsonb column, Redis stream, API) name of each field
_JSON_NAMES = {
    "taker_buy_share": "takerBuyShare",
    "price_change_1h": "priceChange1h",
    "price_change_24h": "priceChange24h",
    "open_interest_change_1h": "openInterestChange1h",
    "open_interest_as_of": "openInterestAsOf",
    "funding_percentile": "fundingPercentile",
    "turnover_24h": "turnover24h",
    "rank_top_percent": "rankTopPercent",
}


@dataclass(frozen=True, slots=True)
class AlertContext:
    taker_buy_share: float | None = None
    price_change_1h: float | None = None
    price_change_24h: float | None = None
    open_interest_change_1h: float | None = None
    open_interest_as_of: float | None = None  # ms since the epoch, exchange time
    funding_percentile: float | None = None
    turnover_24h: float | None = None
    rank_top_percent: float | None = None

    def merged(self, other: AlertContext) -> AlertContext:
        """This context with `other`'s known figures laid over it."""
        known = {k: v for k, v in asdict(other).items() if v is not None}
        return replace(self, **known)

    def to_json_dict(self) -> dict[str, float | None]:
        """Every field, unknown ones as null (so a reader tells 'unknown' from 'not computed')."""
        return {_JSON_NAMES[f.name]: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> AlertContext:
        values: dict[str, float | None] = {}
        for f in fields(cls):
            raw = data.get(_JSON_NAMES[f.name])
            values[f.name] = (
                float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
            )
        return cls(**values)


# --- the math ------------------------------------------------------------------------------


def taker_buy_share(quote_volume: float, taker_buy_quote: float) -> float | None:
    """`Q / q` of the hour's minutes; None without volume."""
    if quote_volume <= 0 or taker_buy_quote < 0:
        return None
    return min(1.0, taker_buy_quote / quote_volume)


def percent_change(now: float | None, then: float | None) -> float | None:
    """`now` against `then`, in percent; None when either is unknown or `then` is not positive."""
    if now is None or then is None or then <= 0 or now <= 0:
        return None
    return (now / then - 1.0) * 100.0


def rank_top_percent(samples: int, at_or_above: int) -> float | None:
    """This hour's place among `samples` same-hour volumes of which `at_or_above` were at least as
    large: the share of the `samples + 1` hours (this one included) at or above it, in percent.
    Above every one of 30 days: top 3.2 %; in the middle: top ~50 %. None with too few days."""
    if samples < RANK_MIN_DAYS:
        return None
    return 100.0 * (at_or_above + 1) / (samples + 1)


def funding_percentile(
    rate: float | None, samples: int, at_or_below: int, since: datetime | None, at: datetime
) -> float | None:
    """The share of the last 30 days' funding snapshots at or below `rate`, in percent; None
    without a rate, or when the snapshots do not reach back `FUNDING_MIN_DAYS`."""
    if rate is None or samples <= 0 or since is None:
        return None
    if (at - since).total_seconds() < FUNDING_MIN_DAYS * 86400:
        return None
    return 100.0 * at_or_below / samples


def near_rule(ratio: float, volume: float, multiple: float, min_volume: float) -> bool:
    """The hour stands at `WARM_FRACTION` of both the lowest multiple and minimum volume any user
    can have (the service's rule: every preset is at or above it), so it may cross soon. Both
    figures only grow within an hour, so an hour near the rule stays near it until it closes."""
    return ratio >= WARM_FRACTION * multiple and volume >= WARM_FRACTION * min_volume


def warm_open_interest_change(
    start: float | None,
    current: float | None,
    as_of_ms: int | None,
    at_ms: int,
    *,
    max_age_ms: int = OPEN_INTEREST_MAX_AGE_MS,
) -> float | None:
    """The hour's open-interest change from a warm figure (`current`, read at `as_of_ms`) for an
    alert at `at_ms`; None when a figure is unknown or the reading is more than `max_age_ms` away
    from the alert."""
    if as_of_ms is None or abs(at_ms - as_of_ms) > max_age_ms:
        return None
    return percent_change(current, start)


# --- the words ------------------------------------------------------------------------------


def format_share(share: float) -> str:
    """A taker-buy share: 64%."""
    return f"{share * 100:.0f}%"


def format_top(top_percent: float) -> str:
    """A rank's share: 3% (for "top 3%"); at least 1%."""
    return f"{max(1, round(top_percent))}%"


def context_lines(ctx: AlertContext | None, hour: datetime, t: Callable[[str], str]) -> tuple[str, ...]:
    """The context as two plain-text lines in `t`'s language; unknown figures read "n/a".
    None (an alert stored before alerts had a context) gives no lines.

    `Taker buys 64% · price +2.31% 1h, -1.20% 24h · OI +4.20% 1h`
    `24h turnover $120.00M · top 3% for 14:00 UTC · funding percentile 85 (30 d)`
    """
    if ctx is None:
        return ()
    unknown = t("n/a")

    def change(value: float | None) -> str:
        return unknown if value is None else format_change(value)

    first = t("Taker buys {share} · price {hour_move} 1h, {day_move} 24h · OI {oi_move} 1h").format(
        share=unknown if ctx.taker_buy_share is None else format_share(ctx.taker_buy_share),
        hour_move=change(ctx.price_change_1h),
        day_move=change(ctx.price_change_24h),
        oi_move=change(ctx.open_interest_change_1h),
    )
    rank = (
        t("rank n/a")
        if ctx.rank_top_percent is None
        else t("top {percent} for {hour} UTC").format(
            percent=format_top(ctx.rank_top_percent), hour=f"{hour.astimezone(UTC):%H}:00"
        )
    )
    second = t("24h turnover {turnover} · {rank} · funding percentile {percentile} (30 d)").format(
        turnover=unknown if ctx.turnover_24h is None else format_usd(ctx.turnover_24h),
        rank=rank,
        percentile=unknown if ctx.funding_percentile is None else f"{ctx.funding_percentile:.0f}",
    )
    return first, second
