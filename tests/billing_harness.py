"""The billing page served for real, with the Telegram OAuth look-alike and the Stripe API
look-alike, and a browser-like HTTP client (a cookie jar that treats the local server as a
secure origin, so the `Secure` session cookie is kept as a browser keeps it on localhost)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from redis.asyncio import Redis

from core.settings import Settings
from tests.bot_harness import compile_catalogs
from tests.fakes.stripe_api import SECRET_KEY, WEBHOOK_SECRET, FakeStripe
from tests.fakes.telegram_api import BOT_ID, TOKEN
from tests.fakes.telegram_oauth import CLIENT_SECRET, FakeTelegramOAuth
from webapp.app import create_app

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Billing:
    server: TestServer
    http: aiohttp.ClientSession
    oauth: FakeTelegramOAuth
    stripe: FakeStripe
    pool: asyncpg.Pool

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def sign_in(self) -> aiohttp.ClientResponse:
        """Log In With Telegram step by step; the answer of our callback (a 303 on success)."""
        start = await self.http.get(self.url("/billing/login"), allow_redirects=False)
        assert start.status == 302, await start.text()
        authorize = await self.http.get(start.headers["Location"], allow_redirects=False)
        assert authorize.status == 302, await authorize.text()
        return await self.http.get(authorize.headers["Location"], allow_redirects=False)

    async def page(self) -> str:
        response = await self.http.get(self.url("/billing"))
        assert response.status == 200
        return await response.text()

    async def csrf(self) -> str:
        found = CSRF.search(await self.page())
        assert found is not None, "no CSRF field: not signed in"
        return found.group(1)

    async def post(self, path: str, data: dict[str, Any]) -> aiohttp.ClientResponse:
        return await self.http.post(self.url(path), data=data, allow_redirects=False)


def billing_settings(
    settings: Settings, oauth: FakeTelegramOAuth, stripe: FakeStripe, **extra: Any
) -> Settings:
    return settings.model_copy(
        update={
            "bot_token": SecretStr(TOKEN),
            "telegram_oauth_client_secret": SecretStr(CLIENT_SECRET),
            **oauth.settings(),
            "stripe_secret_key": SecretStr(SECRET_KEY),
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_api_base": stripe.url,
            "stripe_price_pro": "price_pro",
            "stripe_price_elite": "price_elite",
            "webapp_url": None,
            **extra,
        }
    )


@asynccontextmanager
async def billing(settings: Settings, pool: asyncpg.Pool, redis: Redis) -> AsyncIterator[Billing]:
    compile_catalogs()
    async with FakeTelegramOAuth(client_id=str(BOT_ID)) as oauth, FakeStripe() as stripe:
        app = create_app(billing_settings(settings, oauth, stripe), pool=pool, redis=redis)
        async with TestServer(app) as server:
            jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[str(server.make_url("/"))])
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                yield Billing(server, http, oauth, stripe, pool)
