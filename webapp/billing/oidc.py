"""Log In With Telegram: the OpenID Connect authorization-code flow with PKCE at Telegram's
OAuth server, as Telegram documents it (core.telegram.org/bots/telegram-login).

`start` keeps a fresh `state`, `nonce` and PKCE `code_verifier` in Redis (10 minutes, used
once) and gives the authorize URL. The attempt is bound to the browser that started it: a
random value in a short-lived `HttpOnly`, `SameSite=Lax` cookie (`LOGIN_COOKIE`, sent on the
top-level redirect back from Telegram), whose hash the attempt keeps. `finish` takes the
attempt back by its `state` (a second use finds nothing) and refuses it unless this browser
holds the cookie, so an attacker's callback URL opened by a victim signs nobody in (login
CSRF). It then exchanges the code at the token endpoint with the verifier and the bot's
client secret, and validates the `id_token` against the issuer's JWKS: the RS256 signature,
`iss`, `aud` = the bot's id, `exp` and the `nonce` of this attempt. PKCE and tokens come from
Authlib, the JOSE checks from joserfc (Authlib's own JOSE library). Every URL is a setting.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from aiohttp import web
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from core.errors import NotFound, Unauthorized
from core.secret_compare import same_secret
from core.settings import Settings
from core.telegram_ids import is_user_id
from webapp import keys

log = logging.getLogger(__name__)

ATTEMPT_TTL = 600  # seconds
LOGIN_COOKIE = "volspike_login"
SCOPE = "openid profile"
ALGORITHMS = ["RS256"]
TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True, slots=True)
class TelegramIdentity:
    user_id: int
    first_name: str | None
    username: str | None


def client_id(settings: Settings) -> str:
    """The OAuth client id is the bot's id: the part of the token before the colon."""
    if settings.bot_token is None or settings.telegram_oauth_client_secret is None:
        raise NotFound("Log In With Telegram is off (BOT_TOKEN or TELEGRAM_OAUTH_CLIENT_SECRET is not set)")
    return settings.bot_token.get_secret_value().split(":", 1)[0]


def redirect_uri(request: web.Request) -> str:
    settings = request.app[keys.SETTINGS]
    base = settings.webapp_url.rstrip("/") if settings.webapp_url else f"{request.scheme}://{request.host}"
    return f"{base}/billing/callback"


def _digest(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Started:
    authorize_url: str
    binding: str  # for LOGIN_COOKIE (`bind_browser`)


def bind_browser(response: web.StreamResponse, started: Started) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        started.binding,
        max_age=ATTEMPT_TTL,
        path="/billing",
        httponly=True,
        secure=True,
        samesite="Lax",
    )


def unbind_browser(response: web.StreamResponse) -> None:
    response.del_cookie(LOGIN_COOKIE, path="/billing")


async def start(request: web.Request) -> Started:
    settings = request.app[keys.SETTINGS]
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    binding = generate_token(32)
    attempt = orjson.dumps(
        {
            "nonce": nonce,
            "verifier": verifier,
            "redirect_uri": redirect_uri(request),
            "browser": _digest(binding),
        }
    )
    await request.app[keys.REDIS].set(request.app[keys.NAMES].oidc_login(state), attempt, ex=ATTEMPT_TTL)
    query = {
        "response_type": "code",
        "client_id": client_id(settings),
        "redirect_uri": redirect_uri(request),
        "scope": SCOPE,
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return Started(f"{settings.telegram_oauth_authorize_url}?{urlencode(query)}", binding)


async def _json(response: aiohttp.ClientResponse, what: str) -> Any:
    if response.status != 200:
        log.warning("telegram oauth refused", extra={"step": what, "status": response.status})
        raise Unauthorized(f"Telegram's {what} answered {response.status}")
    try:
        return await response.json(content_type=None)
    except ValueError:
        raise Unauthorized(f"Telegram's {what} did not answer JSON") from None


async def _fetch(settings: Settings, code: str, verifier: str, redirect: str) -> tuple[str, dict[str, Any]]:
    secret = settings.telegram_oauth_client_secret
    assert secret is not None
    cid = client_id(settings)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect,
        "client_id": cid,
        "code_verifier": verifier,
    }
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            headers = {"Authorization": aiohttp.encode_basic_auth(cid, secret.get_secret_value())}
            async with http.post(settings.telegram_oauth_token_url, data=form, headers=headers) as response:
                token = await _json(response, "token endpoint")
            async with http.get(settings.telegram_oauth_jwks_url) as response:
                jwks = await _json(response, "JWKS")
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("telegram oauth unreachable", extra={"error": str(exc)})
        raise web.HTTPBadGateway(reason="Telegram's sign-in server did not answer") from None
    id_token = token.get("id_token") if isinstance(token, dict) else None
    if not isinstance(id_token, str) or not isinstance(jwks, dict):
        raise Unauthorized("Telegram's token endpoint gave no id_token")
    return id_token, jwks


def validate_id_token(
    id_token: str, jwks: dict[str, Any], *, issuer: str, audience: str, nonce: str, now: int
) -> dict[str, Any]:
    """The id_token's claims once signature, iss, aud, exp and nonce hold; Unauthorized otherwise."""
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=ALGORITHMS)  # type: ignore[arg-type]
        jwt.JWTClaimsRegistry(
            now=now,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        log.info("id_token refused", extra={"error": str(exc)})
        raise Unauthorized(f"id_token refused: {exc}") from None
    return dict(token.claims)


async def finish(request: web.Request, code: str, state: str) -> TelegramIdentity:
    settings = request.app[keys.SETTINGS]
    raw = await request.app[keys.REDIS].getdel(request.app[keys.NAMES].oidc_login(state))
    if raw is None:
        raise Unauthorized("unknown or already used sign-in attempt")
    attempt = orjson.loads(raw)
    binding = request.cookies.get(LOGIN_COOKIE, "")
    if not binding or not same_secret(_digest(binding), str(attempt.get("browser", ""))):
        log.warning("sign-in callback from another browser refused", extra={"remote": request.remote})
        raise Unauthorized("this sign-in was started in another browser: start it again here")
    id_token, jwks = await _fetch(settings, code, attempt["verifier"], attempt["redirect_uri"])
    claims = validate_id_token(
        id_token,
        jwks,
        issuer=settings.telegram_oauth_issuer,
        audience=client_id(settings),
        nonce=attempt["nonce"],
        now=int(request.app[keys.CLOCK].now().timestamp()),
    )
    raw_id = claims.get("id", claims.get("sub"))
    try:
        user_id = int(str(raw_id))
    except ValueError:
        raise Unauthorized("id_token names no Telegram user") from None
    if not is_user_id(user_id):
        raise Unauthorized("id_token names no valid Telegram user id")
    name = claims.get("given_name") or claims.get("name")
    username = claims.get("preferred_username")
    return TelegramIdentity(
        user_id,
        name if isinstance(name, str) else None,
        username if isinstance(username, str) else None,
    )
