"""Security headers on every response, the origins a cookie session accepts, and per-IP /
per-user rate limits in Redis.

The Content-Security-Policy allows scripts from our own origin only (no inline script, no
CDN), and `frame-ancestors` lets Telegram's web clients embed the Mini App in their iframe.
The `Server` header names the product without versions (aiohttp's default names Python's and
its own; `db.http_server.ProductRunner` renames it also on the HTTP parser's own 400s). A
WebSocket handshake made with the web-session cookie must come from the app's own origin
(WEBAPP_URL's, else the request's host) or a Telegram web client (`trusted_origin`): another site
cannot open a socket in a signed-in user's name.
Rate limits are fixed one-minute windows counted in Redis (one INCR per request and scope),
so every webapp process shares them; over the limit is 429 with `Retry-After`. When Redis
does not answer the limit is not applied (logged): the API stays up, and /health says
Redis is down.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from core.errors import RateLimited
from db.http_server import SERVER
from webapp import keys
from webapp.auth import current_user

log = logging.getLogger(__name__)

# Telegram's web clients (web.telegram.org serves /k/ and /a/; webk/webz are the older hosts).
TELEGRAM_WEB_CLIENTS = (
    "https://web.telegram.org",
    "https://webk.telegram.org",
    "https://webz.telegram.org",
    "https://*.web.telegram.org",
)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # style attributes set by the chart library and Telegram's theme
        "img-src 'self' data: blob: https://t.me https://*.telegram.org",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        f"frame-ancestors 'self' {' '.join(TELEGRAM_WEB_CLIENTS)}",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

WINDOW = 60  # seconds
LIMITED_PREFIXES = ("/api/", "/udf/", "/ws")


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: also error responses and the WebSocket handshake get them."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER


def own_origin(request: web.Request) -> str:
    url = request.app[keys.SETTINGS].webapp_url
    if url:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return f"{request.scheme}://{request.host}".lower()


def trusted_origin(request: web.Request, origin: str) -> bool:
    """The app's own origin, or one of TELEGRAM_WEB_CLIENTS (`*.` matches one subdomain level)."""
    origin = origin.strip().lower()
    if origin == own_origin(request):
        return True
    for allowed in TELEGRAM_WEB_CLIENTS:
        scheme, _, host = allowed.partition("://*.")
        if host and origin.startswith(f"{scheme}://") and origin.endswith(f".{host}"):
            label = origin.removeprefix(f"{scheme}://").removesuffix(f".{host}")
            if label and "." not in label and ":" not in label and "/" not in label:
                return True
        elif origin == allowed:
            return True
    return False


def _limited(request: web.Request) -> bool:
    return request.path.startswith(LIMITED_PREFIXES)


async def count_request(request: web.Request, scope: str, who: str, limit: int) -> None:
    app = request.app
    now = app[keys.CLOCK].now().timestamp()
    window = int(now // WINDOW)
    key = app[keys.NAMES].rate_limit(scope, who, window)
    try:
        pipe = app[keys.REDIS].pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, WINDOW * 2)
        count, _ = await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("rate limit not checked: redis unavailable", extra={"scope": scope, "error": repr(exc)})
        return
    if count > limit:
        retry_after = max(1, int((window + 1) * WINDOW - now))
        raise RateLimited(retry_after, {"scope": scope, "limit": limit, "windowSeconds": WINDOW})


@web.middleware
async def ip_rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per client address, before authentication (bad initData is counted too)."""
    if _limited(request):
        settings = request.app[keys.SETTINGS]
        await count_request(request, "ip", request.remote or "unknown", settings.api_rate_per_ip)
    return await handler(request)


@web.middleware
async def user_rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per signed-in Telegram user, after authentication."""
    user = current_user(request)
    if user is not None and _limited(request):
        await count_request(request, "user", str(user.id), request.app[keys.SETTINGS].api_rate_per_user)
    return await handler(request)
