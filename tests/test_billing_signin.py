"""Log In With Telegram on /billing: the real OpenID Connect code flow with PKCE against the
Telegram OAuth look-alike, the id_token checked against its JWKS (signature, iss, aud, exp,
nonce), and the session kept in Redis behind a Secure, HttpOnly, SameSite=Lax cookie."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.billing_harness import Billing, billing
from webapp.billing.oidc import LOGIN_COOKIE
from webapp.billing.pages import LOGIN_STARTS_PER_MINUTE
from webapp.session import COOKIE

WEB_USER = 5151


@pytest.fixture
async def site(settings, db, redis) -> AsyncIterator[Billing]:
    async with billing(settings, db, redis) as running:
        yield running


async def test_a_valid_id_token_signs_in_with_a_secure_httponly_lax_cookie(site):
    assert "/billing/login" in await site.page()
    answer = await site.sign_in()
    assert answer.status == 303 and answer.headers["Location"] == "/billing"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    page = await site.page()
    assert 'data-checkout="pro"' in page and 'data-checkout="elite"' in page
    assert "/billing/login" not in page
    assert await site.pool.fetchval("SELECT first_name FROM users WHERE id = $1", WEB_USER) == "Web Trader"


async def test_the_authorize_request_uses_pkce_and_a_fresh_state_and_nonce(site):
    first = await site.http.get(site.url("/billing/login"), allow_redirects=False)
    second = await site.http.get(site.url("/billing/login"), allow_redirects=False)
    a, b = (response.headers["Location"] for response in (first, second))
    assert a.startswith(site.oauth.issuer + "/auth?")
    assert "code_challenge_method=S256" in a and "scope=openid+profile" in a
    assert f"client_id={site.oauth.client_id}" in a
    state = a.split("state=")[1].split("&")[0]
    assert state not in b


@pytest.mark.parametrize(
    ("knob", "value"),
    [("forge", True), ("audience", "999"), ("expires_in", -60), ("nonce", "a-nonce-of-another-sign-in")],
    ids=["forged-signature", "wrong-audience", "expired", "replayed-nonce"],
)
async def test_a_bad_id_token_is_refused_and_signs_nobody_in(site, knob, value):
    setattr(site.oauth, knob, value)
    answer = await site.sign_in()
    assert answer.status == 401
    assert (await answer.json())["error"] == "unauthorized"
    assert "Set-Cookie" not in answer.headers
    assert "/billing/login" in await site.page()
    assert await site.pool.fetchval("SELECT count(*) FROM users WHERE id = $1", WEB_USER) == 0


async def test_a_replayed_callback_is_refused(site):
    start = await site.http.get(site.url("/billing/login"), allow_redirects=False)
    authorize = await site.http.get(start.headers["Location"], allow_redirects=False)
    callback = authorize.headers["Location"]
    assert (await site.http.get(callback, allow_redirects=False)).status == 303
    site.http.cookie_jar.clear()
    again = await site.http.get(callback, allow_redirects=False)
    assert again.status == 401
    assert "/billing/login" in await site.page()


async def test_signing_out_ends_the_session_in_redis(site):
    await site.sign_in()
    csrf = await site.csrf()
    assert (await site.post("/billing/logout", {"csrf": csrf})).status == 303
    assert "/billing/login" in await site.page()


async def test_an_attackers_callback_opened_in_a_victims_browser_signs_nobody_in(site):
    """Login CSRF: the attacker starts a sign-in with their own Telegram account, stops before the
    callback and gets the victim to open that callback URL. The victim's browser never started that
    attempt (it has no login cookie for it), so it is refused and the victim stays signed out."""
    start = await site.http.get(site.url("/billing/login"), allow_redirects=False)
    authorize = await site.http.get(start.headers["Location"], allow_redirects=False)
    attackers_callback = authorize.headers["Location"]
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[site.url("/")])
    async with aiohttp.ClientSession(cookie_jar=jar) as victim:
        answer = await victim.get(attackers_callback, allow_redirects=False)
        assert answer.status == 401
        assert (await answer.json())["error"] == "unauthorized"
        assert COOKIE not in answer.cookies
        page = await (await victim.get(site.url("/billing"))).text()
        assert "/billing/login" in page
    assert await site.pool.fetchval("SELECT count(*) FROM users WHERE id = $1", WEB_USER) == 0


async def test_the_login_cookie_is_short_lived_httponly_and_lax(site):
    start = await site.http.get(site.url("/billing/login"), allow_redirects=False)
    cookie = start.cookies[LOGIN_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["secure"]
    assert 0 < int(cookie["max-age"]) <= 600 and cookie["path"] == "/billing"
    answer = await site.sign_in()  # the browser that started it signs in, and the cookie is spent
    assert answer.status == 303
    assert answer.cookies[LOGIN_COOKIE].value == ""


async def test_starting_sign_ins_is_rate_limited_per_client(site):
    statuses = [
        (await site.http.get(site.url("/billing/login"), allow_redirects=False)).status
        for _ in range(LOGIN_STARTS_PER_MINUTE + 1)
    ]
    assert statuses == [302] * LOGIN_STARTS_PER_MINUTE + [429]


@pytest.mark.parametrize("user_id", [0, -5151, 2**52, 2**64], ids=str)
async def test_an_id_token_naming_a_user_id_outside_telegrams_range_signs_nobody_in(site, user_id: int):
    site.oauth.user = {"id": user_id, "name": "Nobody"}
    answer = await site.sign_in()
    assert answer.status == 401
    assert "Set-Cookie" not in answer.headers or COOKIE not in answer.cookies
    assert await site.pool.fetchval("SELECT count(*) FROM users") == 0
