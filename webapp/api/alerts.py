"""GET /api/alerts: the alert feed with the caller's tier rules (the bot's /alerts rules)."""

from __future__ import annotations

from aiohttp import web

from db import alert_feed
from volspike.alerts import Alert, format_message
from volspike.tiers import feed_window, limits
from webapp import keys
from webapp.api.models import AlertItem, AlertsPage, AlertsQuery
from webapp.api.spec import API, parse_query, respond
from webapp.api.viewer import delay_minutes, viewer_tier


def alert_item(alert: Alert) -> AlertItem:
    """The API's (and /ws's) form of an alert."""
    assert alert.id is not None
    return AlertItem(
        id=alert.id,
        symbol=alert.symbol,
        asset=alert.asset,
        type=alert.alert_type.value,
        current_volume=alert.current_volume,
        previous_volume=alert.previous_volume,
        ratio=round(alert.ratio, 4),
        price=alert.price,
        funding_rate=alert.funding_rate,
        hour=alert.hour,
        detected_at=alert.detected_at,
        text=format_message(alert),
    )


@API.route("GET", "/api/alerts", query=AlertsQuery, response=AlertsPage, errors=(400,), tag="alerts")
async def alerts(request: web.Request) -> web.Response:
    """Latest alerts the caller's tier may see (delay and history applied; public view: free)."""
    query = parse_query(request, AlertsQuery)
    tier = viewer_tier(request)
    window = feed_window(tier, request.app[keys.CLOCK].now())
    types = [t for t in window.types if query.type is None or t == query.type]
    limit = window.limit if query.limit is None else min(query.limit, window.limit)
    if query.symbol is not None:
        await request.app[keys.UNIVERSE].require(query.symbol)
    rows = (
        await alert_feed.feed(
            request.app[keys.POOL],
            visible_until=window.visible_until,
            limit=limit,
            types=types,
            symbol=query.symbol,
        )
        if types
        else []
    )
    tier_limits = limits(tier)
    return respond(
        AlertsPage(
            alerts=[alert_item(a) for a in rows],
            delay_minutes=delay_minutes(tier_limits),
            history_limit=tier_limits.history,
            live=tier_limits.updates,
        )
    )
