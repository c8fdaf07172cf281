"""Log In With Telegram: the OpenID Connect authorization-code flow with PKCE at Telegram's
OAuth server, as Telegram documents it (core.telegram.org/bots/telegram-login).

`start` keeps a fresh `state`, `nonce` and PKCE `code_verifier` in Redis (10 minutes, used
once) and gives the authorize URL. `finish` takes that attempt back by its `state` (a second
use finds nothing), exchanges the code at the token endpoint with the verifier and the bot's
client secret, and validates the `id_token` against the issuer's JWKS: the RS256 signature,
`iss`, `aud` = the bot's id, `exp` and the `nonce` of this attempt. PKCE and tokens come from
Authlib, the JOSE checks from joserfc (Authlib's own JOSE library). Every URL is a setting.
"""

from __future__ import annotations

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
from core.settings import Settings
from webapp import keys

log = logging.getLogger(__name__)

ATTEMPT_TTL = 600  # seconds
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


async def start(request: web.Request) -> str:
    settings = request.app[keys.SETTINGS]
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    attempt = orjson.dumps({"nonce": nonce, "verifier": verifier, "redirect_uri": redirect_uri(request)})
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
    return f"{settings.telegram_oauth_authorize_url}?{urlencode(query)}"


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
    name = claims.get("given_name") or claims.get("name")
    username = claims.get("preferred_username")
    return TelegramIdentity(
        user_id,
        name if isinstance(name, str) else None,
        username if isinstance(username, str) else None,
    )
