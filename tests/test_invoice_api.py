"""POST /api/plans/{tier}/invoice against the Telegram look-alike: a signed initData gets a Stars
invoice link made for that user; a bad signature, an unknown plan or a bad body get a JSON error."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.telegram_payments import FakeStars
from webapp.app import create_app

USER = 8180


def init_data(user_id: int, *, token: str = TOKEN, auth_date: int | None = None) -> str:
    """initData signed as Telegram documents it: HMAC-SHA256 keyed with HMAC("WebAppData", token)."""
    fields = {
        "auth_date": str(auth_date or int(time.time())),
        "query_id": "AAH",
        "user": orjson.dumps({"id": user_id, "first_name": "Trader", "language_code": "uk"}).decode(),
    }
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)


@pytest.fixture
async def api(settings, pool, redis) -> AsyncIterator[tuple[TestClient, FakeStars]]:
    async with FakeTelegram() as tg:
        stars = FakeStars(tg)
        config = settings.model_copy(
            update={"bot_token": SecretStr(TOKEN), "telegram_api_url": tg.url, "stars_price_pro": 300}
        )
        async with TestClient(TestServer(create_app(config, pool=pool, redis=redis))) as client:
            yield client, stars


async def test_a_signed_user_gets_a_subscription_invoice_link_made_for_them(api):
    client, stars = api
    response = await client.post(
        "/api/plans/pro/invoice", headers={"Authorization": f"tma {init_data(USER)}"}
    )
    assert response.status == 200
    assert await response.json() == {"invoiceLink": "https://t.me/$inv1"}
    [call] = stars.tg.calls_to("createInvoiceLink")
    assert call.params["payload"] == f"v1:subscription:pro:300:{USER}"
    assert int(call.params["subscription_period"]) == 2592000
    assert call.params["title"] == "VolSpike Pro — щомісяця"


async def test_a_pass_link_has_no_subscription_period(api):
    client, stars = api
    response = await client.post(
        "/api/plans/elite/invoice",
        headers={"Authorization": f"tma {init_data(USER)}"},
        data=orjson.dumps({"kind": "pass"}),
    )
    assert response.status == 200
    [call] = stars.tg.calls_to("createInvoiceLink")
    assert call.params["payload"].startswith("v1:pass:elite:")
    assert "subscription_period" not in call.params


@pytest.mark.parametrize(
    ("path", "auth", "body", "status"),
    [
        ("/api/plans/pro/invoice", None, b"", 401),
        ("/api/plans/pro/invoice", "tma " + init_data(USER, token="1:forged"), b"", 401),
        ("/api/plans/pro/invoice", "tma " + init_data(USER, auth_date=1_000_000), b"", 401),
        ("/api/plans/gold/invoice", "tma " + init_data(USER), b"", 404),
        ("/api/plans/free/invoice", "tma " + init_data(USER), b"", 404),
        ("/api/plans/pro/invoice", "tma " + init_data(USER), b"{not json", 400),
        ("/api/plans/pro/invoice", "tma " + init_data(USER), b'{"kind": "lifetime"}', 400),
    ],
)
async def test_bad_requests_get_a_json_error_and_no_invoice(api, path, auth, body, status):
    client, stars = api
    headers = {"Authorization": auth} if auth else {}
    response = await client.post(path, headers=headers, data=body)
    assert response.status == status
    assert set(await response.json()) == {"error", "detail"}
    assert stars.tg.calls_to("createInvoiceLink") == []


async def test_an_elite_user_gets_no_pro_invoice_from_the_mini_app(api, pool):
    client, stars = api
    await client.post("/api/plans/elite/invoice", headers={"Authorization": f"tma {init_data(USER)}"})
    await pool.execute("UPDATE users SET tier = 'elite', tier_expires_at = NULL WHERE id = $1", USER)
    before = len(stars.tg.calls_to("createInvoiceLink"))
    response = await client.post(
        "/api/plans/pro/invoice",
        headers={"Authorization": f"tma {init_data(USER)}"},
        data=orjson.dumps({"kind": "pass"}),
    )
    assert response.status == 409
    assert (await response.json())["error"]
    assert len(stars.tg.calls_to("createInvoiceLink")) == before
