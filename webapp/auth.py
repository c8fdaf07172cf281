"""Mini App authentication: `Authorization: tma <initData>` validated as Telegram specifies.

Telegram signs the raw initData query string: the data-check-string is every received field
but `hash`, sorted by key, as `key=value` lines; the secret key is HMAC-SHA256 of the bot
token keyed with "WebAppData"; `hash` is the hex HMAC-SHA256 of the data-check-string under
that key. aiogram's `safe_parse_webapp_init_data` does exactly this (with a constant-time
compare); on top of it `auth_date` must be younger than `INITDATA_MAX_AGE` and a user must
be present. User ids come from validated initData only.

The middleware puts the caller on the request as `USER` (a `WebUser`); without a header
the key is absent: the public view. A header that does not validate is 401, never the public view.

Outside Telegram (a desktop browser), the web session of Log In With Telegram
(`webapp.session`) is the second way to a `WebUser`: without an Authorization header,
the session cookie names the user. A state-changing call made with the cookie must carry the
session's CSRF token in `X-CSRF-Token` (403 otherwise); an unknown or expired cookie is the public view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from aiogram.utils.web_app import WebAppInitData, safe_parse_webapp_init_data
from aiohttp import web
from aiohttp.typedefs import Handler

from core.errors import Forbidden, Unauthorized
from core.i18n import pick_locale
from core.settings import Settings
from core.telegram_ids import is_user_id
from core.tiers import Tier, effective_tier
from db import users as users_db
from webapp import keys
from webapp import session as web_session

SCHEME = "tma"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUTH_PREFIXES = ("/api/", "/ws")


@dataclass(frozen=True, slots=True)
class WebUser:
    """The Mini App's view of a Telegram user: who (from initData) and what they may see."""

    id: int
    first_name: str
    language: str
    tier: Tier  # expiry-adjusted with core.tiers.effective_tier
    tier_expires_at: datetime | None
    can_write: bool = False  # has written to the bot in private: it may message them


USER = web.RequestKey("user", WebUser)  # absent: the public view


def validate_init_data(raw: str, bot_token: str, *, now: datetime, max_age: timedelta) -> WebAppInitData:
    """The parsed initData, or Unauthorized naming what is wrong."""
    if not raw:
        raise Unauthorized("empty initData")
    try:
        data = safe_parse_webapp_init_data(bot_token, raw)
    # ValueError: a bad signature, a malformed query string or fields; TypeError: a non-ASCII
    # `hash`, which the constant-time compare refuses (not ours either way).
    except (ValueError, TypeError):
        raise Unauthorized("initData signature is not valid") from None
    age = now - data.auth_date
    if age > max_age:
        raise Unauthorized("initData is too old")
    if age < -timedelta(minutes=5):
        raise Unauthorized("initData is from the future")
    if data.user is None:
        raise Unauthorized("initData carries no user")
    if not is_user_id(data.user.id):
        raise Unauthorized("initData names no valid Telegram user id")
    return data


def init_data_from_header(header: str | None) -> str | None:
    """The raw initData of an `Authorization: tma <initData>` header (None: no header)."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != SCHEME:
        raise Unauthorized("Authorization must be `tma <initData>`")
    return value.strip()


async def authenticate(app: web.Application, raw: str) -> WebUser:
    """Validate `raw` and load (or create, on first contact) the user it names."""
    settings: Settings = app[keys.SETTINGS]
    if settings.bot_token is None:
        raise Unauthorized("Mini App sign-in is off: BOT_TOKEN is not set")
    now = app[keys.CLOCK].now()
    data = validate_init_data(
        raw,
        settings.bot_token.get_secret_value(),
        now=now,
        max_age=timedelta(seconds=settings.initdata_max_age),
    )
    assert data.user is not None
    pool: asyncpg.Pool = app[keys.POOL]
    record = await users_db.upsert_seen(
        pool,
        data.user.id,
        username=data.user.username,
        first_name=data.user.first_name,
        language=pick_locale(data.user.language_code),
    )
    if record["banned"]:
        raise Forbidden("this account is banned")
    return WebUser(
        id=record["id"],
        first_name=data.user.first_name,
        language=record["language"],
        tier=effective_tier(Tier(record["tier"]), record["tier_expires_at"], now),
        tier_expires_at=record["tier_expires_at"],
        can_write=record["can_write"],
    )


async def session_user(request: web.Request) -> WebUser | None:
    """The user of the request's web session cookie (None without a live session)."""
    found = await web_session.load(request)
    if found is None:
        return None
    if request.method not in SAFE_METHODS:
        await web_session.check_csrf(request, found)
    record = await users_db.get(request.app[keys.POOL], found.user_id)
    if record is None:
        return None
    if record["banned"]:
        raise Forbidden("this account is banned")
    return WebUser(
        id=record["id"],
        first_name=record["first_name"] or "",
        language=record["language"],
        tier=effective_tier(Tier(record["tier"]), record["tier_expires_at"], request.app[keys.CLOCK].now()),
        tier_expires_at=record["tier_expires_at"],
        can_write=record["can_write"],
    )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sets `request[USER]` from the Authorization header on /api and /ws (other paths, such
    as /metrics with its own bearer, are not the Mini App's)."""
    if not request.path.startswith(AUTH_PREFIXES):
        return await handler(request)
    raw = init_data_from_header(request.headers.get("Authorization"))
    if raw is not None:
        request[USER] = await authenticate(request.app, raw)
    else:
        user = await session_user(request)
        if user is not None:
            request[USER] = user
    return await handler(request)


def current_user(request: web.Request) -> WebUser | None:
    user: WebUser | None = request.get(USER)
    return user


def require_user(request: web.Request) -> WebUser:
    user: WebUser | None = request.get(USER)
    if user is None:
        raise Unauthorized(
            "this needs the Mini App's initData (Authorization: tma <initData>) or a web sign-in"
        )
    return user
