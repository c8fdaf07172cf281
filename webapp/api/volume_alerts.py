"""The original product's endpoints, kept for external detectors and old clients.

`POST /api/volume-alerts/ingest` takes the original JSON with `X-API-Key` =
`ALERT_INGEST_API_KEY` (compared in constant time; without the setting the endpoint is off
and answers 404). The alert must meet ingest's own rule on figures and times (`to_alert`),
then is saved and delivered exactly like ingest's own: the same `db.alerts.insert_alert`
(unique per symbol + hour + type, so a repeat is a duplicate, not a second alert) and the same
`AlertPublisher.publish` (XADD into the `alerts` stream for the delivery worker, PUBLISH for
/ws). A new alert answers 200, as the original product did (its poster counts only 200 as
posted). When Redis is down the row stays unpublished and
ingest's republisher sends it later. The posted `message` is not stored: every alert's text
is rendered from its figures.

`GET /api/volume-alerts` returns the latest alerts in the original form, tier-limited.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from aiohttp import web

from core import alert_figures
from core.alerts import Alert, AlertType
from core.errors import BadInput, NotFound, Unauthorized, Unavailable
from core.secret_compare import same_secret
from core.tiers import feed_window
from db import alert_feed
from db import alerts as db_alerts
from db.pool import PG_UNAVAILABLE
from db.publisher import AlertPublisher
from webapp import keys
from webapp.api.models import IngestAlert, IngestAnswer, VolumeAlert, VolumeAlerts
from webapp.api.spec import API, parse_body, respond
from webapp.api.viewer import viewer_tier

log = logging.getLogger(__name__)

PUBLISHER = web.AppKey("alert_publisher", AlertPublisher)
HOUR = timedelta(hours=1)
CLOCK_SKEW = timedelta(minutes=1)  # a poster's clock may run this far ahead of ours


def check_api_key(request: web.Request) -> None:
    configured = request.app[keys.SETTINGS].alert_ingest_api_key
    if configured is None:
        raise NotFound("the ingest endpoint is off (ALERT_INGEST_API_KEY is not set)")
    given = request.headers.get("X-API-Key", "")
    if not same_secret(given, configured.get_secret_value()):
        raise Unauthorized("X-API-Key is missing or wrong")


def to_alert(body: IngestAlert, asset: str, now: datetime) -> Alert:
    """The posted alert as ours; BadInput naming the first field that breaks the alert rule
    (`core.alert_figures`, the rule ingest's own alerts meet) or the clock: the hour must
    be the current or the previous one (the next hour's SPIKE slot is the detector's), and the
    detection time cannot be ahead of now."""
    alert_type = AlertType(body.alertType)
    if body.isUpdate is not None and body.isUpdate != alert_type.is_update:
        raise BadInput({"field": "isUpdate", "message": f"does not match alertType {alert_type.value}"})
    alert = Alert(
        symbol=body.symbol,
        asset=asset,
        alert_type=alert_type,
        hour=_utc(body.hourTimestamp),
        detected_at=_utc(body.timestamp),
        current_volume=body.currentVolume,
        previous_volume=body.previousVolume,
        ratio=body.volumeRatio,
        price=body.price,
        funding_rate=body.fundingRate,
    )
    found = alert_figures.problem(alert) or alert_figures.timing_problem(alert)
    if found is not None:
        raise BadInput({"field": found[0], "message": found[1]})
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    if not this_hour - HOUR <= alert.hour <= this_hour:
        raise BadInput({"field": "hourTimestamp", "message": "must be the current or the previous hour"})
    if alert.detected_at > now + CLOCK_SKEW:
        raise BadInput({"field": "timestamp", "message": "is in the future"})
    return alert


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


@API.route(
    "POST",
    "/api/volume-alerts/ingest",
    body=IngestAlert,
    response=IngestAnswer,
    auth="api_key",
    errors=(400, 401, 404, 503),
    tag="ingest",
)
async def ingest_alert(request: web.Request) -> web.Response:
    """Take an alert from an external detector (original JSON); a repeat answers the first id."""
    check_api_key(request)
    body = await parse_body(request, IngestAlert)
    asset = await request.app[keys.UNIVERSE].require(body.symbol)
    alert = to_alert(body, asset, request.app[keys.CLOCK].now())
    pool = request.app[keys.POOL]
    try:
        alert_id = await db_alerts.insert_alert(pool, alert)
    except PG_UNAVAILABLE as exc:
        log.warning(
            "ingest endpoint: postgres unavailable", extra={"symbol": alert.symbol, "error": repr(exc)}
        )
        raise Unavailable("the database does not answer; retry later") from None
    if alert_id is None:
        existing = await db_alerts.find_id(pool, alert.symbol, alert.hour, alert.alert_type.value)
        return respond(IngestAnswer(success=True, alertId=str(existing), duplicate=True))
    await request.app[PUBLISHER].publish(alert.with_id(alert_id))
    return respond(
        IngestAnswer(success=True, alertId=str(alert_id))
    )  # 200: the original's poster counts only 200


@API.route("GET", "/api/volume-alerts", response=VolumeAlerts, tag="ingest")
async def latest_volume_alerts(request: web.Request) -> web.Response:
    """The latest alerts in the original JSON form (the caller's tier window)."""
    window = feed_window(viewer_tier(request), request.app[keys.CLOCK].now())
    rows = await alert_feed.feed(
        request.app[keys.POOL], visible_until=window.visible_until, limit=window.limit, types=window.types
    )
    return respond(VolumeAlerts(alerts=[VolumeAlert.model_validate(a.to_json_dict()) for a in rows]))
