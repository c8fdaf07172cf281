"""GET /api/me: the signed-in user, their tier and its limits."""

from __future__ import annotations

from aiohttp import web

from webapp.api.models import Me
from webapp.api.spec import API, respond
from webapp.api.viewer import limits_model
from webapp.auth import require_user


@API.route("GET", "/api/me", response=Me, auth="required", tag="account")
async def me(request: web.Request) -> web.Response:
    """The signed-in user."""
    user = require_user(request)
    return respond(
        Me(
            id=user.id,
            first_name=user.first_name,
            tier=user.tier.value,
            tier_expires_at=user.tier_expires_at if user.tier.rank else None,
            language=user.language,
            limits=limits_model(user.tier),
        )
    )
