"""GET /api/me: the signed-in user, their tier and its limits."""

from __future__ import annotations

from aiohttp import web

from core.errors import NotFound
from core.timezones import app_time_zone
from db import user_settings
from db.subscriptions import me_fields
from webapp import keys
from webapp.api.models import Me
from webapp.api.spec import API, respond
from webapp.api.viewer import limits_model
from webapp.auth import require_user


@API.route("GET", "/api/me", response=Me, auth="required", tag="account")
async def me(request: web.Request) -> web.Response:
    """The signed-in user: their plan (tier, expiry, renewal, who provided it) and its limits."""
    user = require_user(request)
    pool = request.app[keys.POOL]
    plan = await me_fields(pool, user.id, request.app[keys.CLOCK].now())
    if plan is None:
        raise NotFound("unknown user")
    zone = app_time_zone((await user_settings.get(pool, user.id)).timezone)
    return respond(
        Me(
            id=user.id,
            first_name=user.first_name,
            tier=plan["tier"],
            tier_expires_at=plan["tierExpiresAt"],
            language=user.language,
            renews=plan["renews"],
            provider=plan["provider"],
            can_write=user.can_write,
            limits=limits_model(user.tier),
            time_zone=zone,
        )
    )
