"""The JSON API's request and response bodies as pydantic models (camelCase on the wire).

These models are the contract between the Mini App's pages and the API; the OpenAPI
document at /api/openapi.json is generated from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

AlertTypeName = Literal["SPIKE", "HALF_UPDATE", "FULL_UPDATE"]
TierName = Literal["free", "pro", "elite"]
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


class CandlesQuery(QueryModel):
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    interval: Interval = "1h"
    from_: int | None = Field(None, alias="from", ge=0, description="unix seconds, inclusive")
    to: int | None = Field(None, ge=0, description="unix seconds, exclusive")
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


class Plan(ApiModel):
    tier: TierName
    delay_minutes: int
    history: int
    watchlist: int | None
    own_thresholds: bool
    updates: bool
    live_stream: bool
    stars_price: int | None


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
    currentVolume: float = Field(gt=0)
    previousVolume: float = Field(ge=0)
    volumeRatio: float = Field(ge=0)
    price: float = Field(gt=0)
    fundingRate: float | None = None
    message: str | None = Field(None, max_length=4096)
    timestamp: datetime
    hourTimestamp: datetime
    isUpdate: bool | None = None
    alertType: AlertTypeName = "SPIKE"


class IngestAnswer(BaseModel):
    success: bool
    alertId: str
    duplicate: bool = False


class VolumeAlert(BaseModel):
    """An alert in the original product's JSON form (volspike.alerts.Alert.to_json_dict)."""

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
