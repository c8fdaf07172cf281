"""Mini App initData authentication on the JSON API, with initData signed in the test."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from core.clock import ManualClock
from tests.miniapp_harness import BOT_TOKEN, NOW, OTHER_BOT_TOKEN, init_data, set_tier, sign_init_data, tma
from webapp.app import create_app


@pytest.fixture
async def client(settings, db, redis):
    app_settings = settings.model_copy(update={"bot_token": SecretStr(BOT_TOKEN)})
    app = create_app(app_settings, pool=db, redis=redis, clock=ManualClock(NOW))
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_valid_init_data_signs_the_user_in_and_creates_them(client: TestClient, db) -> None:
    response = await client.get("/api/me", headers=tma(init_data(1001, first_name="Ada", language="ru")))
    assert response.status == 200
    body = await response.json()
    assert body["id"] == 1001 and body["firstName"] == "Ada"
    assert body["tier"] == "free" and body["tierExpiresAt"] is None
    assert body["language"] == "ru" and body["renews"] is False and body["provider"] is None
    assert body["limits"] == {"delayMinutes": 15, "history": 10, "watchlist": 5}
    assert await db.fetchval("SELECT language FROM users WHERE id = 1001") == "ru"


async def test_me_shows_a_paid_tier_and_its_expiry(client: TestClient, db) -> None:
    await set_tier(db, 1001, "elite", NOW + timedelta(days=30))
    body = await (await client.get("/api/me", headers=tma(init_data(1001)))).json()
    assert body["tier"] == "elite"
    assert body["tierExpiresAt"].startswith("2026-04-01T12:00:00")
    assert body["limits"] == {"delayMinutes": 0, "history": 100, "watchlist": None}


async def test_expired_paid_tier_counts_as_free(client: TestClient, db) -> None:
    await set_tier(db, 1001, "pro", NOW - timedelta(seconds=1))
    body = await (await client.get("/api/me", headers=tma(init_data(1001)))).json()
    assert body["tier"] == "free" and body["tierExpiresAt"] is None


async def test_a_forged_field_is_refused(client: TestClient) -> None:
    raw = init_data(1001).replace("%22id%22%3A1001", "%22id%22%3A1002")
    assert "1002" in raw
    response = await client.get("/api/me", headers=tma(raw))
    assert response.status == 401
    assert (await response.json())["error"] == "unauthorized"


async def test_an_added_field_is_refused(client: TestClient) -> None:
    response = await client.get("/api/me", headers=tma(init_data(1001) + "&start_param=BTCUSDT"))
    assert response.status == 401


async def test_init_data_signed_with_another_bots_token_is_refused(client: TestClient) -> None:
    response = await client.get("/api/me", headers=tma(init_data(1001, token=OTHER_BOT_TOKEN)))
    assert response.status == 401


async def test_init_data_older_than_initdata_max_age_is_refused(client: TestClient) -> None:
    old = init_data(1001, auth_date=NOW - timedelta(hours=24, seconds=1))
    response = await client.get("/api/me", headers=tma(old))
    assert response.status == 401
    assert "old" in (await response.json())["detail"]
    fresh = init_data(1001, auth_date=NOW - timedelta(hours=23, minutes=59))
    assert (await client.get("/api/me", headers=tma(fresh))).status == 200


async def test_missing_init_data_is_401_on_personal_routes_and_public_elsewhere(client: TestClient) -> None:
    for path in ("/api/me", "/api/watchlist", "/api/settings"):
        response = await client.get(path)
        assert response.status == 401, path
        assert (await response.json())["error"] == "unauthorized"
    assert (await client.get("/api/plans")).status == 200


@pytest.mark.parametrize(
    "header",
    [
        "tma ",
        "tma garbage",
        "tma %%%",
        "tma hash=abc",
        "Bearer " + "x" * 40,
        "tma " + "a=" * 2000,
    ],
)
async def test_garbage_authorization_is_401_json(client: TestClient, header: str) -> None:
    response = await client.get("/api/me", headers={"Authorization": header})
    assert response.status == 401
    body = await response.json()
    assert body["error"] == "unauthorized"


async def test_signed_init_data_without_a_user_is_refused(client: TestClient) -> None:
    raw = sign_init_data({"auth_date": str(int(NOW.timestamp())), "query_id": "x"})
    assert (await client.get("/api/me", headers=tma(raw))).status == 401


async def test_a_banned_user_is_403(client: TestClient, db) -> None:
    await set_tier(db, 1001, "free")
    await db.execute("UPDATE users SET banned = true WHERE id = 1001")
    assert (await client.get("/api/me", headers=tma(init_data(1001)))).status == 403


async def test_without_bot_token_sign_in_is_refused(settings, db, redis) -> None:
    app = create_app(settings, pool=db, redis=redis, clock=ManualClock(NOW))
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/api/me", headers=tma(init_data(1001)))).status == 401


async def test_me_names_who_gave_a_paid_tier(client: TestClient, db) -> None:
    from db.tier_history import Cause, change_tier

    await client.get("/api/me", headers=tma(init_data(1001)))
    async with db.acquire() as conn:
        await change_tier(conn, 1001, "pro", NOW + timedelta(days=7), cause=Cause.ADMIN_GRANT)
    body = await (await client.get("/api/me", headers=tma(init_data(1001)))).json()
    assert body["tier"] == "pro" and body["provider"] == "admin" and body["renews"] is False


async def test_me_says_whether_the_bot_may_write_to_the_user(client: TestClient, db) -> None:
    """A user who only opened the Mini App has not started the bot: `canWrite` is false, so the app
    asks for write access; once they write to the bot in private it is true."""
    from db import users as users_db

    body = await (await client.get("/api/me", headers=tma(init_data(1001)))).json()
    assert body["canWrite"] is False
    await users_db.upsert_seen(db, 1001, username=None, first_name="Ada", language="en", in_private=True)
    body = await (await client.get("/api/me", headers=tma(init_data(1001)))).json()
    assert body["canWrite"] is True
    await users_db.upsert_seen(db, 1001, username=None, first_name="Ada", language="en", in_private=False)
    assert (await (await client.get("/api/me", headers=tma(init_data(1001)))).json())["canWrite"] is True


@pytest.mark.parametrize("user_id", [0, -1001, 2**52, 2**53 + 1, 2**63 - 1, 2**64], ids=str)
async def test_signed_init_data_naming_a_user_id_outside_telegrams_range_is_401(
    client: TestClient, db, user_id: int
) -> None:
    """Signed with the bot's token, but no Telegram user has this id (positive, 52 bits at most)."""
    response = await client.get("/api/me", headers=tma(init_data(user_id)))
    assert response.status == 401
    assert (await response.json())["error"] == "unauthorized"
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_the_largest_telegram_user_id_signs_in(client: TestClient) -> None:
    response = await client.get("/api/me", headers=tma(init_data(2**52 - 1)))
    assert response.status == 200


async def test_reading_the_app_writes_last_seen_at_at_most_once_per_few_minutes(
    client: TestClient, db
) -> None:
    """Every authenticated call signs the user in; only the first in five minutes writes the row
    (its xmin, the writing transaction, stays the same across the others)."""
    headers = tma(init_data(1001, first_name="Ada"))
    assert (await client.get("/api/me", headers=headers)).status == 200
    before = await db.fetchrow("SELECT xmin::text AS xmin, last_seen_at FROM users WHERE id = 1001")
    for path in ("/api/me", "/api/settings", "/api/me", "/api/watchlist"):
        assert (await client.get(path, headers=headers)).status == 200
    after = await db.fetchrow("SELECT xmin::text AS xmin, last_seen_at FROM users WHERE id = 1001")
    assert tuple(after) == tuple(before)
    # A changed name is written at once; a visit after five minutes refreshes last_seen_at.
    assert (await client.get("/api/me", headers=tma(init_data(1001, first_name="Ada L")))).status == 200
    assert await db.fetchval("SELECT first_name FROM users WHERE id = 1001") == "Ada L"
    await db.execute("UPDATE users SET last_seen_at = now() - interval '6 minutes' WHERE id = 1001")
    assert (await client.get("/api/me", headers=tma(init_data(1001, first_name="Ada L")))).status == 200
    seen = await db.fetchval("SELECT now() - last_seen_at FROM users WHERE id = 1001")
    assert seen < timedelta(minutes=1)
