"""GET/PUT /api/settings: the bot's /settings over JSON, with the bot's rules.

The rules are the bot's own: thresholds come from the same presets (core/presets.py),
time zones and quiet hours are parsed by core/timezones.py, and a field only pro and elite
may change (thresholds, alert types, quiet hours) is 403 `tier_required` for free users;
HALF/FULL updates are elite's. Only changed fields are checked, so a page can send back
what GET gave it.
"""

from __future__ import annotations

from datetime import time
from typing import cast

import asyncpg
from aiohttp import web

from core.alerts import AlertType, AlertTypesProblem, alert_types_problem
from core.daily_cap import DAILY_CAP_PRESETS, valid_cap
from core.errors import BadInput, TierRequired
from core.presets import multiple_presets, volume_presets
from core.tiers import Tier, limits
from core.timezones import parse_quiet_hours, parse_timezone
from db import user_settings as settings_db
from db.user_settings import UserSettings
from webapp import keys
from webapp.api.models import SettingsUpdate, UserSettingsBody
from webapp.api.spec import API, parse_body, respond
from webapp.auth import WebUser, require_user


def _hhmm(value: time | None) -> str | None:
    return None if value is None else f"{value:%H:%M}"


def settings_body(prefs: UserSettings) -> UserSettingsBody:
    return UserSettingsBody(
        spike_multiple=prefs.spike_multiple,
        min_quote_volume=prefs.min_quote_volume,
        alert_types=[t.value for t in AlertType if t.value in prefs.alert_types],
        watchlist_only=prefs.watchlist_only,
        quiet_start=_hhmm(prefs.quiet_start),
        quiet_end=_hhmm(prefs.quiet_end),
        timezone=prefs.timezone,
        paused=prefs.paused,
        daily_cap=prefs.daily_cap,
    )


@API.route("GET", "/api/settings", response=UserSettingsBody, auth="required", tag="settings")
async def get_settings(request: web.Request) -> web.Response:
    """The user's alert settings (null thresholds: the service defaults)."""
    user = require_user(request)
    return respond(settings_body(await settings_db.get(request.app[keys.POOL], user.id)))


def _need(user: WebUser, tier: Tier, field: str) -> None:
    if user.tier.rank < tier.rank:
        raise TierRequired({"field": field, "tier": tier.value})


@API.route(
    "PUT",
    "/api/settings",
    body=SettingsUpdate,
    response=UserSettingsBody,
    auth="required",
    errors=(400, 403),
    tag="settings",
)
async def put_settings(request: web.Request) -> web.Response:
    """Change some settings; the answer is the whole settings object."""
    user = require_user(request)
    update = await parse_body(request, SettingsUpdate)
    pool = request.app[keys.POOL]
    settings = request.app[keys.SETTINGS]
    current = settings_body(await settings_db.get(pool, user.id))
    changed = {
        name: value
        for name, value in update.model_dump(exclude_unset=True).items()
        if value != getattr(current, name)
    }
    custom = "spike_multiple", "min_quote_volume", "alert_types", "quiet_start", "quiet_end"
    for name in custom:
        if name in changed and not limits(user.tier).custom_thresholds:
            _need(user, Tier.PRO, name)

    if "spike_multiple" in changed:
        value = changed["spike_multiple"]
        default = settings.spike_multiple
        if value is not None and value not in multiple_presets(default):
            raise BadInput({"field": "spikeMultiple", "allowed": multiple_presets(default)})
    if "min_quote_volume" in changed:
        value = changed["min_quote_volume"]
        default = settings.spike_min_quote_volume
        if value is not None and value not in volume_presets(default):
            raise BadInput({"field": "minQuoteVolume", "allowed": volume_presets(default)})
    if "alert_types" in changed:
        types = set(changed["alert_types"])
        problem = alert_types_problem(types)
        if problem is AlertTypesProblem.EMPTY:
            raise BadInput({"field": "alertTypes", "message": "keep at least one alert type"})
        if problem is AlertTypesProblem.UPDATES_WITHOUT_SPIKE:
            raise BadInput(
                {"field": "alertTypes", "message": "updates follow a SPIKE: keep SPIKE to get updates"}
            )
        if any(AlertType(t).is_update for t in types) and not limits(user.tier).updates:
            _need(user, Tier.ELITE, "alertTypes")
    quiet: tuple[time, time] | None = None
    quiet_changed = "quiet_start" in changed or "quiet_end" in changed
    if quiet_changed:
        start = changed.get("quiet_start", current.quiet_start)
        end = changed.get("quiet_end", current.quiet_end)
        if (start is None) != (end is None):
            raise BadInput(
                {"field": "quietStart", "message": "give both quietStart and quietEnd, or neither"}
            )
        if start is not None:
            quiet = parse_quiet_hours(f"{start}-{end}")
            if quiet is None:
                raise BadInput({"field": "quietStart", "message": "not valid HH:MM hours"})
    # The daily cap: every plan (it only ever sends fewer messages).
    if "daily_cap" in changed and not valid_cap(changed["daily_cap"]):
        raise BadInput({"field": "dailyCap", "allowed": list(DAILY_CAP_PRESETS)})
    zone: str | None = None
    if "timezone" in changed:
        zone = parse_timezone(changed["timezone"] or "")
        if zone is None:
            raise BadInput({"field": "timezone", "message": "unknown time zone"})

    async with pool.acquire() as proxy, proxy.transaction():
        # db.user_settings takes a Connection; the pool's proxy behaves as one.
        conn = cast(asyncpg.Connection, proxy)
        if "spike_multiple" in changed:
            value = changed["spike_multiple"]
            await settings_db.set_multiple(conn, user.id, None if value == settings.spike_multiple else value)
        if "min_quote_volume" in changed:
            value = changed["min_quote_volume"]
            await settings_db.set_min_volume(
                conn, user.id, None if value == settings.spike_min_quote_volume else value
            )
        if "alert_types" in changed:
            chosen = set(changed["alert_types"])
            await settings_db.set_alert_types(
                conn, user.id, [t.value for t in AlertType if t.value in chosen]
            )
        if quiet_changed:
            await settings_db.set_quiet_hours(conn, user.id, *(quiet or (None, None)))
        if zone is not None:
            await settings_db.set_timezone(conn, user.id, zone)
        if "daily_cap" in changed:
            await settings_db.set_daily_cap(conn, user.id, changed["daily_cap"])
        if "paused" in changed:
            await settings_db.set_paused(conn, user.id, bool(changed["paused"]))
        if "watchlist_only" in changed:
            # Set, never toggled: two saves of the same value at once both leave it so.
            await settings_db.set_watchlist_only(conn, user.id, bool(changed["watchlist_only"]))
    return respond(settings_body(await settings_db.get(pool, user.id)))
