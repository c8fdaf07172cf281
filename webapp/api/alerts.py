"""GET /api/alerts: the alert feed with the caller's tier rules (the bot's /alerts rules)."""

from __future__ import annotations

from aiohttp import web

from bot.alert_message import alert_text
from db import alert_feed
from volspike.alerts import Alert
from volspike.tiers import feed_window, limits
from webapp import keys
from webapp.api.models import AlertItem, AlertsPage, AlertsQuery
from webapp.api.spec import API, parse_query, respond
from webapp.api.viewer import delay_minutes, viewer_locale, viewer_tier
from webapp.pages.templating import I18N


def alert_item(alert: Alert, text: str) -> AlertItem:
    """The API's (and /ws's) form of an alert, with its `text` in the reader's language."""
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
        text=text,
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
            search=query.search,
        )
        if types
        else []
    )
    tier_limits = limits(tier)
    i18n, locale = request.app[I18N], viewer_locale(request)
    return respond(
        AlertsPage(
            alerts=[alert_item(a, alert_text(a, i18n=i18n, locale=locale)) for a in rows],
            delay_minutes=delay_minutes(tier_limits),
            history_limit=tier_limits.history,
            live=tier_limits.updates,
        )
    )
