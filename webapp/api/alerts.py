"""GET /api/alerts: the alert feed with the caller's tier rules (the bot's /alerts rules)."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from core.alert_context import context_lines
from core.alert_message import alert_text
from core.alerts import Alert, AlertType
from core.i18n import Translator
from core.outcomes import Outcome
from core.tiers import feed_refresh, feed_window, limits
from core.timezones import app_time_zone
from db import alert_feed, alert_outcomes, user_settings
from webapp import keys
from webapp.api.markets import market_table
from webapp.api.models import (
    AlertContextItem,
    AlertItem,
    AlertOutcome,
    AlertsPage,
    AlertsQuery,
    HourCloses,
)
from webapp.api.spec import API, parse_query, respond
from webapp.api.viewer import delay_minutes, viewer_locale, viewer_tier
from webapp.auth import current_user
from webapp.keys import I18N


def outcome_item(outcome: Outcome) -> AlertOutcome:
    return AlertOutcome(
        horizon_minutes=outcome.horizon_minutes,
        change15m=outcome.change(15),
        change1h=outcome.change(60),
        change4h=outcome.change(240),
        vs_btc15m=outcome.relative(15),
        vs_btc1h=outcome.relative(60),
        vs_btc4h=outcome.relative(240),
        direction=None if outcome.direction is None else ("up" if outcome.direction > 0 else "down"),
        direction_source=outcome.direction_source,
        taker_share=outcome.taker_share,
        mfe=outcome.mfe,
        mae=outcome.mae,
        mfe_vs_btc=outcome.rel_mfe,
        mae_vs_btc=outcome.rel_mae,
    )


def alert_item(
    alert: Alert,
    text: str,
    outcome: Outcome | None = None,
    *,
    lines: tuple[str, ...] = (),
    sparkline: tuple[list[int], list[float]] | None = None,
) -> AlertItem:
    """The API's (and /ws's) form of an alert, with its `text` and context `lines` in the
    reader's language, and its hour's 1-minute closes when given."""
    assert alert.id is not None
    ctx = alert.context
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
        context=None if ctx is None else AlertContextItem(**asdict(ctx)),
        context_lines=list(lines),
        outcome=None if outcome is None else outcome_item(outcome),
        projected_volume=alert.projected_volume,
        projected_ratio=None if alert.projected_ratio is None else round(alert.projected_ratio, 4),
        is_projection=alert.alert_type is AlertType.EARLY,
        simulated=alert.simulated,
        sparkline=None if sparkline is None else HourCloses(minutes=sparkline[0], closes=sparkline[1]),
    )


def localized_context(alert: Alert, i18n: Translator, locale: str) -> tuple[str, ...]:
    return context_lines(alert.context, alert.hour, lambda msgid: i18n.gettext(msgid, locale=locale))


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
    pool = request.app[keys.POOL]
    outcomes = await alert_outcomes.for_alerts(pool, [a.id for a in rows if a.id is not None])
    hours = await alert_feed.hour_closes(pool, [(a.symbol, a.hour) for a in rows])
    # The price now as the tier sees it everywhere (the Markets page's table and pace).
    market, prices_at = await market_table(request, tier) if rows else ({}, None)
    prices = {
        a.symbol: float(market[a.symbol]["price"])
        for a in rows
        if a.symbol in market and market[a.symbol].get("price") is not None
    }
    user = current_user(request)
    zone = None if user is None else app_time_zone((await user_settings.get(pool, user.id)).timezone)
    tier_limits = limits(tier)
    i18n, locale = request.app[I18N], viewer_locale(request)
    return respond(
        AlertsPage(
            alerts=[
                alert_item(
                    a,
                    alert_text(a, i18n=i18n, locale=locale),
                    outcomes.get(a.id or 0),
                    lines=localized_context(a, i18n, locale),
                    sparkline=hours.get((a.symbol, a.hour), ([], [])),
                )
                for a in rows
            ],
            delay_minutes=delay_minutes(tier_limits),
            history_limit=tier_limits.history,
            live=tier_limits.updates,
            prices=prices,
            prices_at=prices_at,
            refresh_seconds=int(feed_refresh(tier).total_seconds()),
            time_zone=zone,
        )
    )
