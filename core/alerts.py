"""The alert model, its JSON form and its English text.

The JSON field names are those of the product's original ingest payload and are a
public contract (Redis stream, API, `volspike replay`); `simulated` is ours.

An alert detected on the built-in exchange simulator is `simulated` (ingest knows it from the
USE_SIMULATOR setting, which `make run` sets whenever it starts the simulator), and its text in
every form and language starts with SIMULATED_MARKER: `simulated_prefix` is that one rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from core.alert_context import AlertContext

# The figures' formats (one rule each, in core/number_formats.json), re-exported for the
# alert text's users.
from core.number_format import format_funding as format_funding
from core.number_format import format_price as format_price
from core.number_format import format_ratio as format_ratio
from core.number_format import format_usd as format_usd

HALF_LAST_SPIKE_MINUTE = 20  # a HALF_UPDATE follows a SPIKE that came at minute <= 20
FULL_FIRST_SKIP_MINUTE = 55  # no FULL_UPDATE follows a SPIKE that came at minute >= 55


class AlertType(StrEnum):
    SPIKE = "SPIKE"
    HALF_UPDATE = "HALF_UPDATE"
    FULL_UPDATE = "FULL_UPDATE"
    # The early warning (core/pace.py): the hour's pace projects the multiple, the hour is not
    # there yet. Its own type, which pro and elite users opt into (not in the default types).
    EARLY = "EARLY"

    @property
    def is_update(self) -> bool:
        return self in (AlertType.HALF_UPDATE, AlertType.FULL_UPDATE)


@dataclass(frozen=True, slots=True)
class Level:
    """The grade of a crossing (`core.presets`): the highest preset multiple and minimum
    volume the hour stood at or above when it was recorded."""

    multiple: float
    min_volume: float


@dataclass(frozen=True, slots=True)
class Alert:
    symbol: str
    asset: str
    alert_type: AlertType
    hour: datetime  # start of the hour the alert belongs to (UTC)
    detected_at: datetime  # exchange event time that triggered it (UTC)
    current_volume: float  # current hour quote volume
    previous_volume: float  # previous closed hour quote volume
    ratio: float
    price: float
    funding_rate: float | None
    id: int | None = None
    simulated: bool = False  # detected on the built-in exchange simulator, not on Binance
    context: AlertContext | None = None  # core.alert_context: figures around it, when it fired
    # A crossing of users' own thresholds (a SPIKE row only they receive, never in the public
    # feed); None: the service's own rule, the public alert.
    level: Level | None = None
    # EARLY only: the hour's total its pace projects (`core.pace`); the ratio and current volume
    # stay what the hour stands at now.
    projected_volume: float | None = None

    @property
    def projected_ratio(self) -> float | None:
        if self.projected_volume is None or self.previous_volume <= 0:
            return None
        return self.projected_volume / self.previous_volume

    def with_id(self, alert_id: int) -> Alert:
        return replace(self, id=alert_id)

    def to_json_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "symbol": self.symbol,
            "asset": self.asset,
            "currentVolume": self.current_volume,
            "previousVolume": self.previous_volume,
            "volumeRatio": round(self.ratio, 4),
            "price": self.price,
            "fundingRate": self.funding_rate,
            "message": format_message(self),
            "timestamp": iso_utc(self.detected_at),
            "hourTimestamp": iso_utc(self.hour),
            "isUpdate": self.alert_type.is_update,
            "alertType": self.alert_type.value,
        }
        if self.id is not None:
            data["id"] = self.id
        if self.simulated:  # present only when true: a real alert keeps the original payload exactly
            data["simulated"] = True
        if self.context is not None:
            data["context"] = self.context.to_json_dict()
        if self.projected_volume is not None:  # EARLY: a projection, said so in the fields' names
            data["projectedVolume"] = self.projected_volume
            data["projectedRatio"] = round(self.projected_volume / self.previous_volume, 4)
            data["isProjection"] = True
        if self.level is not None:  # present only on crossings, which never reach the public feed
            data["level"] = {"multiple": self.level.multiple, "minVolume": self.level.min_volume}
        return data

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_json_dict())

    @classmethod
    def from_json(cls, raw: bytes | str | dict[str, Any]) -> Alert:
        data = raw if isinstance(raw, dict) else orjson.loads(raw)
        funding = data.get("fundingRate")
        context = data.get("context")
        level = data.get("level")
        return cls(
            symbol=str(data["symbol"]),
            asset=str(data["asset"]),
            alert_type=AlertType(data["alertType"]),
            hour=parse_iso(data["hourTimestamp"]),
            detected_at=parse_iso(data["timestamp"]),
            current_volume=float(data["currentVolume"]),
            previous_volume=float(data["previousVolume"]),
            ratio=float(data["volumeRatio"]),
            price=float(data["price"]),
            funding_rate=None if funding is None else float(funding),
            id=int(data["id"]) if data.get("id") is not None else None,
            simulated=data.get("simulated") is True,
            context=AlertContext.from_json_dict(context) if isinstance(context, dict) else None,
            level=None if level is None else Level(float(level["multiple"]), float(level["minVolume"])),
            projected_volume=None if data.get("projectedVolume") is None else float(data["projectedVolume"]),
        )


def iso_utc(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


HEADLINE_PREFIX = {
    AlertType.SPIKE: "",
    AlertType.HALF_UPDATE: "HALF-UPDATE: ",
    AlertType.FULL_UPDATE: "UPDATE: ",
    AlertType.EARLY: "EARLY: ",
}


SIMULATED_MARKER = "[SIMULATED]"


def simulated_prefix(simulated: bool) -> str:
    """What goes before an alert's text in every form and language: the marker for a simulated
    alert (so a simulated figure can never pass for a real one), nothing otherwise."""
    return f"{SIMULATED_MARKER} " if simulated else ""


def format_headline(alert: Alert) -> str:
    """`BTC hourly volume $5.00B (3.33× prev) — VOLUME SPIKE!` with the update prefix
    (and the simulated marker first for a simulated alert). An EARLY says it is a projection:
    `EARLY: BTC hourly volume on pace for $5.00B (3.33× prev), now $1.50B (1.00×) — PROJECTION,
    not a spike yet`."""
    if alert.alert_type is AlertType.EARLY and alert.projected_ratio is not None:
        assert alert.projected_volume is not None
        return (
            f"{simulated_prefix(alert.simulated)}{HEADLINE_PREFIX[alert.alert_type]}{alert.asset} "
            f"hourly volume on pace for {format_usd(alert.projected_volume)} "
            f"({format_ratio(alert.projected_ratio)} prev), "
            f"now {format_usd(alert.current_volume)} ({format_ratio(alert.ratio)}) "
            "— PROJECTION, not a spike yet"
        )
    return (
        f"{simulated_prefix(alert.simulated)}{HEADLINE_PREFIX[alert.alert_type]}{alert.asset} hourly volume "
        f"{format_usd(alert.current_volume)} ({format_ratio(alert.ratio)} prev) — VOLUME SPIKE!"
    )


def format_message(alert: Alert) -> str:
    """The English alert text used by the JSON form and plain-text outputs."""
    return (
        f"{format_headline(alert)}\n"
        f"Price: {format_price(alert.price)}\n"
        f"Funding: {format_funding(alert.funding_rate)}"
    )


class AlertTypesProblem(StrEnum):
    """Why a choice of alert types cannot be kept (`alert_types_problem`)."""

    EMPTY = "empty"
    UPDATES_WITHOUT_SPIKE = "updates_without_spike"


def alert_types_problem(types: Iterable[str]) -> AlertTypesProblem | None:
    """The one rule for a user's alert types (bot settings and the Mini App API alike): at least
    one, and no update without SPIKE, since an update follows the user's SPIKE of the hour and
    never comes without it."""
    chosen = {AlertType(t) for t in types}
    if not chosen:
        return AlertTypesProblem.EMPTY
    if AlertType.SPIKE not in chosen:
        return AlertTypesProblem.UPDATES_WITHOUT_SPIKE
    return None
