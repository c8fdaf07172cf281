"""The JSON API's request and response bodies as pydantic models (camelCase on the wire).

These models are the contract between the Mini App's pages and the API; the OpenAPI
document at /api/openapi.json is generated from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

AlertTypeName = Literal["SPIKE", "HALF_UPDATE", "FULL_UPDATE", "EARLY"]
IngestAlertTypeName = Literal["SPIKE", "HALF_UPDATE", "FULL_UPDATE"]  # the original product's types
TierName = Literal["free", "pro", "elite"]
# core.entitlements.Offer: what buying a plan would be (the last three are refusals)
OfferName = Literal["new", "renewal", "upgrade", "change", "lower", "forever", "subscribed"]
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]

# A symbol as the exchange lists it: upper case, in any script (`我踏马来了USDT` trades on Binance
# USDⓈ-M), no spaces; whether it is listed is the universe's to say (bot/symbols.py's rule).
SYMBOL_PATTERN = r"^[^\sa-z]{2,48}$"
SEARCH_MAX = 48
CANDLE_LIMIT_CAP = 1000


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown input fields are refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class QueryModel(ApiModel):
    """Query strings: unknown parameters (cache busters) are ignored rather than refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ErrorBody(ApiModel):
    error: str
    detail: object = None


class Limits(ApiModel):
    delay_minutes: int
    history: int
    watchlist: int | None


class Me(ApiModel):
    id: int
    first_name: str
    tier: TierName
    tier_expires_at: datetime | None
    language: str
    renews: bool = False
    provider: str | None = None
    can_write: bool  # false: the user never started the bot, so the Mini App asks for write access
    limits: Limits
    time_zone: str | None = Field(
        None, description="the zone the app writes times in (the user's setting); null: the device's zone"
    )


class AlertContextItem(ApiModel):
    """An alert's context (core/alert_context.py) as computed when it fired; null: unknown."""

    taker_buy_share: float | None = Field(
        description="taker-buy share of the hour's quote volume so far, 0..1"
    )
    price_change_1h: float | None = Field(
        alias="priceChange1h", description="price at the alert against the hour's open, %"
    )
    price_change_24h: float | None = Field(
        alias="priceChange24h", description="price at the alert against 24 h earlier, %"
    )
    open_interest_change_1h: float | None = Field(
        alias="openInterestChange1h",
        description=(
            "open interest against the hour's start, %; from a figure kept warm before the alert "
            "when fresh, else added shortly after it"
        ),
    )
    open_interest_as_of: float | None = Field(
        alias="openInterestAsOf",
        description="exchange time (ms since the epoch) of the open interest the change was computed with",
    )
    funding_percentile: float | None = Field(
        description="share of the last 30 days' funding snapshots at or below the alert's rate, %"
    )
    turnover_24h: float | None = Field(alias="turnover24h", description="quote volume of the last 24 h, USD")
    rank_top_percent: float | None = Field(
        description="this hour's place among the same UTC hour of the last 30 days: top X %"
    )


class AlertOutcome(ApiModel):
    """What the price did after the alert (SPIKEs only), in percent (1.5 is +1.5 %). Figures are
    filled in as each horizon passes: `horizonMinutes` is the longest computed so far (15, 60 or
    240); a null figure of a computed horizon is unknown (candles were missing), never zero."""

    horizon_minutes: int = Field(description="longest horizon computed so far: 15, 60 or 240")
    change15m: float | None = Field(alias="change15m", description="price change from the alert to +15 min")
    change1h: float | None = Field(alias="change1h")
    change4h: float | None = Field(alias="change4h")
    vs_btc15m: float | None = Field(
        serialization_alias="vsBtc15m",
        description="the change with BTC's change over the same window subtracted",
    )
    vs_btc1h: float | None = Field(serialization_alias="vsBtc1h")
    vs_btc4h: float | None = Field(serialization_alias="vsBtc4h")
    direction: Literal["up", "down"] | None = Field(
        description="the hour's taker imbalance (or its price move when takers were even)"
    )
    direction_source: Literal["taker", "price"] | None
    taker_share: float | None = Field(description="taker-buy share of the hour's quote volume, 0..1")
    mfe: float | None = Field(description="largest favourable move within 4 h, in `direction`")
    mae: float | None = Field(description="largest adverse move within 4 h (zero or negative)")
    mfe_vs_btc: float | None
    mae_vs_btc: float | None


class HourCloses(ApiModel):
    """An hour's stored 1-minute closes: `minutes[i]` (0-59, minutes since the hour began) closed
    at `closes[i]`; a minute with no stored candle is absent."""

    minutes: list[int]
    closes: list[float]


class AlertItem(ApiModel):
    id: int
    symbol: str
    asset: str
    type: AlertTypeName
    current_volume: float
    previous_volume: float
    ratio: float
    price: float
    funding_rate: float | None
    hour: datetime
    detected_at: datetime
    text: str
    context: AlertContextItem | None = Field(None, description="null for alerts stored before alerts had one")
    context_lines: list[str] = Field(
        default_factory=list, description="the context in the reader's language, as the bot writes it"
    )
    outcome: AlertOutcome | None = Field(None, description="null until +15 min has passed (and for updates)")
    projected_volume: float | None = Field(
        None, description="EARLY only: the hour's total its pace projects, a projection, not a figure reached"
    )
    projected_ratio: float | None = Field(
        None, description="EARLY only: the projected total over the previous hour"
    )
    is_projection: bool = Field(
        False, description="true for an EARLY warning: its headline figure is projected"
    )
    simulated: bool = Field(False, description="detected on the built-in exchange simulator, not on Binance")
    sparkline: HourCloses | None = Field(
        None, description="the alert's hour of stored 1-minute closes (in the feed; null on the live socket)"
    )


class AlertsQuery(QueryModel):
    type: AlertTypeName | None = None
    symbol: str | None = Field(None, pattern=SYMBOL_PATTERN)
    search: str | None = Field(
        None,
        min_length=1,
        max_length=SEARCH_MAX,
        description="alerts of the symbols containing this text, in any case (`eth`, `pepe`, `bt`)",
    )
    limit: int | None = Field(None, ge=1, le=100)


class AlertsPage(ApiModel):
    alerts: list[AlertItem]
    delay_minutes: int
    history_limit: int
    live: bool
    prices: dict[str, float] = Field(
        default_factory=dict,
        description="each listed symbol's price now as the tier sees it (the Markets page's table)",
    )
    prices_at: datetime | None = Field(None, description="when those prices were taken")
    refresh_seconds: int = Field(60, description="when the feed should ask again (the tier's pace)")
    time_zone: str | None = Field(
        None,
        description="the signed-in user's time zone (their settings'); null: the device's zone "
        "(the public view, or the setting still at its default UTC)",
    )


class WhatIfQuery(QueryModel):
    multiple: float | None = Field(
        None, gt=1, le=1000, description="spike multiple, at least the service's (the default)"
    )
    min_volume: float | None = Field(
        None,
        ge=0,
        le=1e13,
        description="minimum hourly quote volume in USDT, at least the service's (the default)",
    )


class WhatIfAnswer(ApiModel):
    """SPIKEs these thresholds would have given over the last `days` days with candles."""

    multiple: float
    min_volume: float
    days: float = Field(description="days of the 30-day window with stored candles")
    alerts: int
    alerts_per_day: float | None
    median1h: float | None = Field(
        alias="median1h", description="median move after 1 h of those alerts, percent"
    )
    known: int = Field(description="alerts with a known move after 1 h")
    text: str = Field(description="the sentence, in the caller's language")


class RecordQuery(QueryModel):
    days: Literal[30, 90] = Field(30, description="the window: the last 30 or 90 days")

    @field_validator("days", mode="before")
    @classmethod
    def _number(cls, value: object) -> object:
        return int(value) if isinstance(value, str) and value.isdigit() else value


class RecordHorizon(ApiModel):
    minutes: Literal[15, 60, 240]
    known: int = Field(description="alerts whose move at this horizon is known")
    p25: float | None = Field(description="lower quartile of the move, percent")
    median: float | None
    p75: float | None
    big_share: float | None = Field(description="share (0..1) of the known moves beyond ±bigMove percent")


class RecordBucket(ApiModel):
    key: str
    label: str
    alerts: int = Field(description="SPIKEs detected in the window, outcome known or not")
    small_sample: bool = Field(description="fewer than `smallSample` alerts: read with care")
    horizons: list[RecordHorizon]


class RecordGrouping(ApiModel):
    key: Literal["all", "ratio", "rank", "taker", "liquidity", "early"]
    title: str
    buckets: list[RecordBucket]


class RecordPage(ApiModel):
    days: Literal[30, 90]
    start: datetime
    end: datetime
    big_move: float = Field(description="percent: a move beyond it either way counts in `bigShare`")
    small_sample: int
    groupings: list[RecordGrouping]


class Market(ApiModel):
    symbol: str
    asset: str
    price: float | None
    change24h: float | None = Field(alias="change24h")
    hour_quote_volume: float | None
    ratio: float | None
    funding_rate: float | None
    watched: bool


class MarketsPage(ApiModel):
    markets: list[Market]
    updated_at: datetime
    refresh_seconds: int


# Unix seconds past 3000-01-01 are refused (400): Python's datetime ends at 9999 and a chart
# never asks that far, so a huge `to` is a bad request rather than an overflow.
LATEST_TIME = 32_503_680_000


class CandlesQuery(QueryModel):
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    interval: Interval = "1h"
    from_: int | None = Field(None, alias="from", ge=0, le=LATEST_TIME, description="unix seconds, inclusive")
    to: int | None = Field(None, ge=0, le=LATEST_TIME, description="unix seconds, exclusive")
    limit: int = Field(500, ge=1, le=CANDLE_LIMIT_CAP)


class CandleBar(BaseModel):
    t: int = Field(description="open time, unix seconds")
    o: float
    h: float
    l: float  # noqa: E741 - the contract's name for low
    c: float
    v: float = Field(description="quote volume")


class Marker(BaseModel):
    t: int = Field(description="detection time, unix seconds")
    type: AlertTypeName
    ratio: float = Field(description="the hour's volume over the previous hour's when it fired")


class CandlesPage(ApiModel):
    symbol: str
    interval: Interval
    candles: list[CandleBar]
    markers: list[Marker]


class WatchlistBody(ApiModel):
    symbol: str = Field(min_length=1, max_length=30)


class Watchlist(ApiModel):
    symbols: list[str]
    limit: int | None


class UserSettingsBody(ApiModel):
    """The bot's /settings, field for field (db/user_settings.py). Times are local `HH:MM`."""

    spike_multiple: float | None
    min_quote_volume: float | None
    alert_types: list[AlertTypeName]
    watchlist_only: bool
    quiet_start: str | None = Field(None, pattern=r"^\d{2}:\d{2}$")
    quiet_end: str | None = Field(None, pattern=r"^\d{2}:\d{2}$")
    timezone: str
    paused: bool
    daily_cap: int | None = None  # SPIKE messages a local day, then one summary (null: no cap)


class SettingsUpdate(ApiModel):
    """PUT /api/settings: the fields to change (absent ones stay as they are)."""

    spike_multiple: float | None = None
    min_quote_volume: float | None = None
    alert_types: list[AlertTypeName] | None = None
    watchlist_only: bool | None = None
    quiet_start: str | None = Field(None, pattern=r"^\d{2}:\d{2}$")
    quiet_end: str | None = Field(None, pattern=r"^\d{2}:\d{2}$")
    timezone: str | None = Field(None, max_length=64)
    paused: bool | None = None
    daily_cap: int | None = None  # one of core.daily_cap.DAILY_CAP_PRESETS, or null: no cap


class Plan(ApiModel):
    tier: TierName
    delay_minutes: int
    history: int
    watchlist: int | None
    own_thresholds: bool
    updates: bool
    live_stream: bool
    stars_price: int | None
    # A Stars subscription to this plan for the caller, by the one entitlement rule
    # (core.entitlements.offer): on sale or not, and what it would be or why not. The public view
    # is a newcomer (every paid plan "new"); the free plan is never sold (offer null).
    on_sale: bool
    offer: OfferName | None


class CurrentPlan(ApiModel):
    tier: TierName
    tier_expires_at: datetime | None


class PlansPage(ApiModel):
    plans: list[Plan]
    current: CurrentPlan


class IngestAlert(BaseModel):
    """The original product's ingest payload (field names kept exactly)."""

    model_config = ConfigDict(extra="ignore")

    symbol: str = Field(pattern=SYMBOL_PATTERN)
    asset: str = Field(min_length=1, max_length=30)
    currentVolume: float = Field(gt=0, allow_inf_nan=False)
    previousVolume: float = Field(gt=0, allow_inf_nan=False)
    volumeRatio: float = Field(gt=0, allow_inf_nan=False)
    price: float = Field(gt=0, allow_inf_nan=False)
    fundingRate: float | None = Field(None, allow_inf_nan=False)
    message: str | None = Field(None, max_length=4096)
    timestamp: datetime
    hourTimestamp: datetime
    isUpdate: bool | None = None
    alertType: IngestAlertTypeName = "SPIKE"


class IngestAnswer(BaseModel):
    success: bool
    alertId: str
    duplicate: bool = False


class VolumeAlert(BaseModel):
    """An alert in the original product's JSON form (core.alerts.Alert.to_json_dict)."""

    id: int
    symbol: str
    asset: str
    currentVolume: float
    previousVolume: float
    volumeRatio: float
    price: float
    fundingRate: float | None
    message: str
    timestamp: str
    hourTimestamp: str
    isUpdate: bool
    alertType: AlertTypeName


class VolumeAlerts(BaseModel):
    alerts: list[VolumeAlert]
