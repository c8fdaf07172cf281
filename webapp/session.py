"""The web session: who signed in with Telegram in this browser, kept in Redis behind a cookie.

The cookie holds only a random token (`HttpOnly`, `Secure`, `SameSite=Lax`); Redis holds the
Telegram user id and the session's CSRF token, with a TTL. Every state-changing POST made with
the cookie carries the CSRF token (a form field `csrf` or an `X-CSRF-Token` header), compared
in constant time, so another site cannot make the browser post on the user's behalf.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

import orjson
from aiohttp import web

from core.errors import Forbidden
from webapp import keys

COOKIE = "volspike_session"
CSRF_COOKIE = "volspike_csrf"  # readable by the page's scripts, which echo it in X-CSRF-Token
TTL = 7 * 86_400  # seconds
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True, slots=True)
class WebSession:
    token: str
    user_id: int
    csrf: str


async def create(app: web.Application, user_id: int) -> WebSession:
    session = WebSession(secrets.token_urlsafe(32), user_id, secrets.token_urlsafe(32))
    value = orjson.dumps({"user_id": user_id, "csrf": session.csrf})
    await app[keys.REDIS].set(app[keys.NAMES].web_session(session.token), value, ex=TTL)
    return session


async def load(request: web.Request) -> WebSession | None:
    """The session of the request's cookie; None without a cookie or for an unknown one."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    raw = await request.app[keys.REDIS].get(request.app[keys.NAMES].web_session(token))
    if raw is None:
        return None
    data = orjson.loads(raw)
    return WebSession(token, int(data["user_id"]), str(data["csrf"]))


async def end(request: web.Request, session: WebSession) -> None:
    await request.app[keys.REDIS].delete(request.app[keys.NAMES].web_session(session.token))


def set_cookie(response: web.StreamResponse, session: WebSession) -> None:
    response.set_cookie(
        COOKIE, session.token, max_age=TTL, path="/", httponly=True, secure=True, samesite="Lax"
    )
    response.set_cookie(CSRF_COOKIE, session.csrf, max_age=TTL, path="/", secure=True, samesite="Lax")


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")


async def check_csrf(request: web.Request, session: WebSession) -> None:
    """Forbidden unless the request carries this session's CSRF token."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Forbidden("missing or wrong CSRF token")
