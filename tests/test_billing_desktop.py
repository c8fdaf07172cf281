"""The Mini App's API on a desktop browser: after Log In With Telegram on the web, the session
cookie stands in for initData; a state-changing call made with it needs the CSRF token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.billing_harness import Billing, billing
from webapp.session import CSRF_COOKIE

WEB_USER = 5151


@pytest.fixture
async def site(settings, db, redis) -> AsyncIterator[Billing]:
    async with billing(settings, db, redis) as running:
        yield running


def csrf_cookie(site: Billing) -> str:
    [value] = [c.value for c in site.http.cookie_jar if c.key == CSRF_COOKIE]
    return value


async def test_the_session_cookie_opens_the_api_as_the_signed_in_user(site):
    assert (await site.http.get(site.url("/api/me"))).status == 401
    await site.sign_in()
    response = await site.http.get(site.url("/api/me"))
    assert response.status == 200
    me = await response.json()
    assert (me["id"], me["tier"]) == (WEB_USER, "free")


async def test_a_state_changing_call_with_the_cookie_needs_the_csrf_token(site):
    await site.sign_in()
    current = await (await site.http.get(site.url("/api/settings"))).json()
    refused = await site.http.put(site.url("/api/settings"), json=current)
    assert refused.status == 403
    assert (await refused.json())["error"] == "forbidden"
    forged = await site.http.put(site.url("/api/settings"), json=current, headers={"X-CSRF-Token": "forged"})
    assert forged.status == 403
    accepted = await site.http.put(
        site.url("/api/settings"), json=current, headers={"X-CSRF-Token": csrf_cookie(site)}
    )
    assert accepted.status == 200, await accepted.text()


async def test_a_signed_out_cookie_is_the_public_view_again(site):
    await site.sign_in()
    token = csrf_cookie(site)
    assert (await site.post("/billing/logout", {"csrf": token})).status == 303
    assert (await site.http.get(site.url("/api/me"))).status == 401
