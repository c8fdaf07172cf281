"""A local look-alike of Telegram's OAuth server for Log In With Telegram (OpenID Connect).

Authorization-code flow with PKCE on 127.0.0.1: `GET /auth` signs in `user` at once (the user
approving in Telegram) and redirects to `redirect_uri?code=…&state=…`; `POST /token` (client
id and secret by HTTP Basic) checks the code once, the redirect URI and the PKCE verifier
(S256), and answers an `id_token` signed RS256 with the key published at
`/.well-known/jwks.json`. Test knobs make the token wrong in one way each: `forge` (signed
with a key not in the JWKS), `audience`, `expires_in` (negative: already expired), `nonce`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.fakes.serving import serve

CLIENT_SECRET = "telegram-oauth-secret-for-the-look-alike"


@dataclass
class FakeTelegramOAuth:
    client_id: str
    user: dict[str, Any] = field(default_factory=lambda: {"id": 5151, "name": "Web Trader"})
    host: str = "127.0.0.1"
    port: int = 0
    forge: bool = False
    audience: str | None = None
    expires_in: int = 300
    nonce: str | None = None
    issued: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "tg-1", "use": "sig", "alg": "RS256"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "tg-1"})
        self._codes: dict[str, dict[str, str]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeTelegramOAuth:
        app = web.Application()
        app.router.add_get("/auth", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        self._runner, self.port = await serve(app, self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    def settings(self) -> dict[str, str]:
        return {
            "telegram_oauth_issuer": self.issuer,
            "telegram_oauth_authorize_url": f"{self.issuer}/auth",
            "telegram_oauth_token_url": f"{self.issuer}/token",
            "telegram_oauth_jwks_url": f"{self.issuer}/.well-known/jwks.json",
        }

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience or self.client_id,
            "sub": str(self.user["id"]),
            "iat": now,
            "exp": now + self.expires_in,
            "nonce": self.nonce or nonce,
            **self.user,
        }
        self.issued.append(claims)
        key = self.other_key if self.forge else self.key
        return jwt.encode({"alg": "RS256", "kid": "tg-1"}, claims, key)

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("response_type") != "code" or q.get("client_id") != self.client_id:
            return web.json_response({"error": "invalid_request"}, status=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.json_response(
                {"error": "invalid_request", "error_description": "PKCE required"}, status=400
            )
        code = f"code-{next(self._ids)}"
        self._codes[code] = {
            "redirect_uri": q["redirect_uri"],
            "nonce": q.get("nonce", ""),
            "challenge": q["code_challenge"],
        }
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}")

    async def _token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        grant = self._codes.pop(str(form.get("code")), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "redirect_uri"}, status=400
            )
        digest = hashlib.sha256(str(form.get("code_verifier", "")).encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "code_verifier"}, status=400
            )
        return web.json_response(
            {
                "access_token": f"at-{next(self._ids)}",
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": self.id_token(grant["nonce"]),
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.key.as_dict(private=False)]})
