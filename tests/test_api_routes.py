"""The JSON API's routes through real HTTP, PostgreSQL and Redis: shapes, tier rules, bad input."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.alert_message import render_alert
from core.alerts import Alert, AlertType
from core.clock import ManualClock
from core.tiers import Tier
from db import alert_feed, user_settings
from db.alerts import insert_alert
from db.live_state import LiveState
from tests.miniapp_harness import (
    BOT_TOKEN,
    NOW,
    add_alert,
    add_minutes,
    add_symbols,
    init_data,
    set_tier,
    tma,
)
from webapp.api.models import CandlesPage, MarketsPage
from webapp.app import create_app
from webapp.keys import ANSWERS, I18N


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def client(settings, db, redis, clock):
    await add_symbols(db, ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    app_settings = settings.model_copy(update={"bot_token": SecretStr(BOT_TOKEN)})
    app = create_app(app_settings, pool=db, redis=redis, clock=clock)
    async with TestClient(TestServer(app)) as client:
        yield client


def user(user_id: int = 1001) -> dict[str, str]:
    return tma(init_data(user_id))


# --- alerts -----------------------------------------------------------------------------


async def test_public_alert_feed_applies_the_free_delay_and_spikes_only(client: TestClient, db) -> None:
    late = await add_alert(db, "BTCUSDT", NOW - timedelta(minutes=20))
    await add_alert(db, "ETHUSDT", NOW - timedelta(minutes=5))  # not yet visible to free
    await add_alert(db, "BTCUSDT", NOW - timedelta(minutes=20), AlertType.HALF_UPDATE)  # elite only
    body = await (await client.get("/api/alerts")).json()
    assert [a["id"] for a in body["alerts"]] == [late]
    assert body["delayMinutes"] == 15 and body["historyLimit"] == 10 and body["live"] is False
    item = body["alerts"][0]
    assert set(item) == {
        "id", "symbol", "asset", "type", "currentVolume", "previousVolume", "ratio", "price",
        "fundingRate", "hour", "detectedAt", "text", "context", "contextLines", "outcome", "simulated",
        "sparkline", "projectedVolume", "projectedRatio", "isProjection",
    }  # fmt: skip
    assert item["symbol"] == "BTCUSDT" and item["asset"] == "BTC" and item["type"] == "SPIKE"
    assert item["isProjection"] is False
    assert item["projectedVolume"] is None and item["projectedRatio"] is None
    assert item["detectedAt"] == "2026-03-02T11:40:00Z" and item["hour"] == "2026-03-02T11:00:00Z"
    assert item["text"].startswith("BTC hourly volume $5.00M (3.50× prev) — VOLUME SPIKE!")


@pytest.mark.parametrize(
    ("language", "headline", "price"),
    [
        ("ru", "BTC: часовой объём $5.00M (3.50× к пред.) — ВСПЛЕСК ОБЪЁМА!", "Цена: "),
        ("es", "BTC: volumen horario $5.00M (3.50× ant.) — ¡PICO DE VOLUMEN!", "Precio: "),
        ("en", "BTC hourly volume $5.00M (3.50× prev) — VOLUME SPIKE!", "Price: "),
    ],
)
async def test_alert_text_is_in_the_users_language_as_the_bot_sends_it(
    client: TestClient, db, language: str, headline: str, price: str
) -> None:
    await add_alert(db, "BTCUSDT", NOW - timedelta(minutes=20))
    signed = tma(init_data(1200, language=language))
    item = (await (await client.get("/api/alerts", headers=signed)).json())["alerts"][0]
    lines = item["text"].split("\n")
    assert lines[0] == headline and lines[1].startswith(price)
    i18n = client.server.app[I18N]
    alert = (await alert_feed.feed(db, visible_until=NOW, limit=1, types=list(AlertType), symbol=None))[0]
    sent = render_alert(alert, i18n=i18n, locale=language, tier=Tier.FREE, private=True, webapp_url=None)
    assert sent.text.replace("<b>", "").replace("</b>", "").split("\n")[:3] == lines  # the bot's words
    public = await (await client.get("/api/alerts", headers={"Accept-Language": language})).json()
    assert public["alerts"][0]["text"] == item["text"]  # the public view follows the browser


async def test_elite_feed_is_live_with_updates_and_filters(client: TestClient, db) -> None:
    await set_tier(db, 1001, "elite")
    spike = await add_alert(db, "BTCUSDT", NOW - timedelta(minutes=1))
    half = await add_alert(db, "BTCUSDT", NOW - timedelta(seconds=30), AlertType.HALF_UPDATE)
    eth = await add_alert(db, "ETHUSDT", NOW - timedelta(seconds=10))
    body = await (await client.get("/api/alerts", headers=user())).json()
    assert [a["id"] for a in body["alerts"]] == [eth, half, spike]
    assert body["live"] is True and body["delayMinutes"] == 0 and body["historyLimit"] == 100
    body = await (await client.get("/api/alerts?type=HALF_UPDATE", headers=user())).json()
    assert [a["id"] for a in body["alerts"]] == [half]
    body = await (await client.get("/api/alerts?symbol=ETHUSDT&limit=5", headers=user())).json()
    assert [a["id"] for a in body["alerts"]] == [eth]


async def test_a_card_gets_its_hours_closes_the_price_now_and_the_tiers_pace(
    client: TestClient, db, redis, names
) -> None:
    await set_tier(db, 1001, "pro")
    await user_settings.get(db, 1001)  # the row the bot makes on /start
    await user_settings.set_timezone(db, 1001, "Asia/Tokyo")
    hour = NOW - timedelta(hours=1)  # 11:00
    await add_minutes(db, "BTCUSDT", hour - timedelta(minutes=1), 1, price=50.0)  # the hour before
    await add_minutes(db, "BTCUSDT", hour + timedelta(minutes=5), 3, price=100.0)  # 11:05-11:07
    await add_minutes(db, "BTCUSDT", hour + timedelta(hours=1), 1, price=70.0)  # the hour after
    btc = await add_alert(db, "BTCUSDT", hour + timedelta(minutes=6))
    eth = await insert_alert(
        db,
        Alert(
            symbol="ETHUSDT",
            asset="ETH",
            alert_type=AlertType.SPIKE,
            hour=hour,
            detected_at=hour + timedelta(minutes=8),
            current_volume=4e6,
            previous_volume=1e6,
            ratio=4.0,
            price=3_000.0,
            funding_rate=None,
            simulated=True,
        ),
    )
    live = LiveState(redis, names)
    live.set_price("BTCUSDT", 98_940.0, 1)
    await live.flush(force=True)
    body = await (await client.get("/api/alerts", headers=user())).json()
    items = {a["id"]: a for a in body["alerts"]}
    assert items[btc]["sparkline"] == {"minutes": [5, 6, 7], "closes": [100.5, 101.5, 102.5]}
    assert items[eth]["sparkline"] == {"minutes": [], "closes": []}  # no stored minute
    assert items[eth]["simulated"] is True and items[btc]["simulated"] is False
    assert items[eth]["text"].startswith("[SIMULATED] ")
    assert body["prices"] == {"BTCUSDT": 98_940.0}  # ETH has no price in the table: none
    assert body["refreshSeconds"] == 20 and body["timeZone"] == "Asia/Tokyo"
    public = await (await client.get("/api/alerts")).json()
    assert public["refreshSeconds"] == 60 and public["timeZone"] is None


class CountingPool:
    """The app's pool, counting what the app asks of it (statements and connections)."""

    def __init__(self, pool) -> None:
        self._pool = pool
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        target = getattr(self._pool, name)
        if name in ("fetch", "fetchrow", "fetchval", "execute", "executemany", "acquire"):

            def counted(*args, **kwargs):
                self.calls.append(name if name == "acquire" else " ".join(str(args[0]).split()))
                return target(*args, **kwargs)

            return counted
        return target


async def test_a_page_of_cards_costs_the_same_statements_for_one_alert_or_thirty(
    settings, db, redis, clock
) -> None:
    await add_symbols(db, ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    await set_tier(db, 1001, "elite")
    counting = CountingPool(db)
    app_settings = settings.model_copy(update={"bot_token": SecretStr(BOT_TOKEN)})
    app = create_app(app_settings, pool=counting, redis=redis, clock=clock)
    async with TestClient(TestServer(app)) as client:

        async def statements() -> list[str]:
            await client.get("/api/me", headers=user())  # the user is loaded (and cached) first
            counting.calls.clear()
            body = await (await client.get("/api/alerts", headers=user())).json()
            assert all(a["sparkline"] is not None for a in body["alerts"])
            return list(counting.calls)

        await add_alert(db, "BTCUSDT", NOW - timedelta(minutes=1))
        await statements()  # the first answer makes the user's settings row
        one = await statements()
        for i in range(29):  # thirty alerts of three symbols over ten hours, each hour its own sparkline
            symbol = ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3]
            await add_alert(db, symbol, NOW - timedelta(hours=2 + i // 3, minutes=i % 3))
        thirty = await statements()
    assert len(thirty) == len(one) and sorted(thirty) == sorted(one), thirty
    assert sum("candles_1m" in call for call in thirty) == 1  # every sparkline in one statement


async def test_history_is_cut_at_the_tier_limit(client: TestClient, db) -> None:
    for minute in range(12):
        await add_alert(db, "BTCUSDT", NOW - timedelta(hours=minute + 1))
    body = await (await client.get("/api/alerts?limit=100")).json()
    assert len(body["alerts"]) == 10


@pytest.mark.parametrize(
    "query", ["type=BOGUS", "symbol=btc-usdt", "limit=0", "limit=101", "limit=x", "symbol=NOPEUSDT"]
)
async def test_bad_alert_filters_are_400(client: TestClient, query: str) -> None:
    response = await client.get(f"/api/alerts?{query}")
    assert response.status == 400
    body = await response.json()
    assert set(body) == {"error", "detail"}


# --- markets ----------------------------------------------------------------------------


async def _market(redis, names, symbols: dict[str, float]) -> None:
    live = LiveState(redis, names)
    for symbol, price in symbols.items():
        live.set_price(symbol, price, 1)
        live.set_24h(symbol, -1.5, 1e9)
        live.set_funding(symbol, 0.0001)
    await live.flush(force=True)


async def test_markets_come_from_live_state_with_watched_flags(client: TestClient, db, redis, names) -> None:
    await set_tier(db, 1001, "elite")
    await _market(redis, names, {"BTCUSDT": 97000.0, "ETHUSDT": 3500.0, "GONEUSDT": 1.0})
    await client.post("/api/watchlist", json={"symbol": "ETH"}, headers=user())
    body = await (await client.get("/api/markets", headers=user())).json()
    assert body["refreshSeconds"] == 0
    rows = {m["symbol"]: m for m in body["markets"]}
    assert set(rows) == {"BTCUSDT", "ETHUSDT"}  # only symbols ingest follows
    assert rows["ETHUSDT"]["watched"] is True and rows["BTCUSDT"]["watched"] is False
    assert rows["BTCUSDT"] == {
        "symbol": "BTCUSDT", "asset": "BTC", "price": 97000.0, "change24h": -1.5,
        "hourQuoteVolume": None, "ratio": None, "fundingRate": 0.0001, "watched": False,
    }  # fmt: skip


async def test_elite_markets_read_the_live_table_at_most_once_a_second(
    client: TestClient, db, redis, names, clock: ManualClock
) -> None:
    """Ingest rewrites the live table at most once a second; a webapp process reads it at most
    that often (the requests of that second share the read and its encoded items), and each
    caller still gets their own watched flags in the page the model describes."""
    await set_tier(db, 1001, "elite")
    await set_tier(db, 1002, "elite")
    await _market(redis, names, {"BTCUSDT": 97000.0, "ETHUSDT": 3500.0})
    await client.post("/api/watchlist", json={"symbol": "ETH"}, headers=user())
    first = await (await client.get("/api/markets", headers=user())).json()
    await _market(redis, names, {"BTCUSDT": 99000.0})
    clock.advance(timedelta(seconds=0.5))
    other = await (await client.get("/api/markets", headers=user(1002))).json()
    assert MarketsPage.model_validate(other) and MarketsPage.model_validate(first)
    assert {m["symbol"]: m["watched"] for m in first["markets"]} == {"BTCUSDT": False, "ETHUSDT": True}
    assert {m["symbol"]: m["watched"] for m in other["markets"]} == {"BTCUSDT": False, "ETHUSDT": False}
    assert [m["price"] for m in other["markets"]] == [97000.0, 3500.0]  # the same second's read
    clock.advance(timedelta(seconds=0.6))
    later = await (await client.get("/api/markets", headers=user())).json()
    assert [m["price"] for m in later["markets"]] == [99000.0, 3500.0]  # a second on: read again
    assert [m["watched"] for m in later["markets"]] == [False, True]


async def test_free_markets_are_a_snapshot_refreshed_every_15_minutes(
    client: TestClient, redis, names
) -> None:
    await _market(redis, names, {"BTCUSDT": 97000.0})
    first = await (await client.get("/api/markets")).json()
    assert first["refreshSeconds"] == 900
    await _market(redis, names, {"BTCUSDT": 99000.0})
    again = await (await client.get("/api/markets")).json()
    assert again["markets"][0]["price"] == 97000.0 and again["updatedAt"] == first["updatedAt"]
    await redis.delete(names.market_snapshot("free"))  # the snapshot's TTL ran out
    fresh = await (await client.get("/api/markets")).json()
    assert fresh["markets"][0]["price"] == 99000.0


# --- candles ----------------------------------------------------------------------------


async def test_hourly_candles_are_aggregated_from_minutes_with_markers(client: TestClient, db) -> None:
    start = NOW - timedelta(hours=3)
    await add_minutes(db, "BTCUSDT", start, 180)
    alert_at = start + timedelta(hours=1, minutes=7)
    await add_alert(db, "BTCUSDT", alert_at)
    frm, to = int(start.timestamp()), int(NOW.timestamp())
    response = await client.get(f"/api/candles?symbol=BTCUSDT&interval=1h&from={frm}&to={to}")
    assert response.status == 200
    CandlesPage.model_validate_json(await response.read(), strict=True)  # the documented schema
    body = await response.json()
    assert body["symbol"] == "BTCUSDT" and body["interval"] == "1h"
    assert [c["t"] for c in body["candles"]] == [frm, frm + 3600, frm + 7200]
    first = body["candles"][0]
    assert first == {
        "t": frm,
        "o": 100.0,
        "h": 160.0,
        "l": 99.0,
        "c": 159.5,
        "v": sum(1000.0 + i for i in range(60)),
    }
    assert body["markers"] == [{"t": int(alert_at.timestamp()), "type": "SPIKE", "ratio": 3.5}]


async def test_candle_limit_keeps_the_newest_bars(client: TestClient, db) -> None:
    start = NOW - timedelta(minutes=30)
    await add_minutes(db, "BTCUSDT", start, 30)
    body = await (await client.get("/api/candles?symbol=BTCUSDT&interval=5m&limit=2")).json()
    assert [c["t"] for c in body["candles"]] == [
        int((start + timedelta(minutes=20)).timestamp()),
        int((start + timedelta(minutes=25)).timestamp()),
    ]


@pytest.mark.parametrize(
    "query",
    [
        "symbol=NOPEUSDT&interval=1h",
        "symbol=BTCUSDT&interval=2h",
        "symbol=BTCUSDT&interval=1h&from=2000&to=1000",
        "symbol=BTCUSDT&interval=1h&limit=1001",
        "symbol=BTCUSDT&interval=1h&limit=0",
        "symbol=BTCUSDT&from=abc",
        "interval=1h",
    ],
)
async def test_bad_candle_queries_are_400(client: TestClient, query: str) -> None:
    response = await client.get(f"/api/candles?{query}")
    assert response.status == 400
    assert set(await response.json()) == {"error", "detail"}


# --- watchlist --------------------------------------------------------------------------


async def test_watchlist_add_list_remove(client: TestClient) -> None:
    response = await client.post("/api/watchlist", json={"symbol": "BTCUSDT"}, headers=user())
    assert response.status == 200
    assert await response.json() == {"symbols": ["BTCUSDT"], "limit": 5}
    await client.post("/api/watchlist", json={"symbol": "sol"}, headers=user())
    body = await (await client.get("/api/watchlist", headers=user())).json()
    assert body == {"symbols": ["BTCUSDT", "SOLUSDT"], "limit": 5}
    response = await client.delete("/api/watchlist/BTCUSDT", headers=user())
    assert await response.json() == {"symbols": ["SOLUSDT"], "limit": 5}


async def test_watchlist_is_shared_with_the_bots_table(client: TestClient, db) -> None:
    await client.post("/api/watchlist", json={"symbol": "ETHUSDT"}, headers=user())
    assert await db.fetchval("SELECT symbol FROM watchlists WHERE user_id = 1001") == "ETHUSDT"


async def test_full_watchlist_is_403_watchlist_full(client: TestClient, db) -> None:
    await add_symbols(db, [f"C{i}USDT" for i in range(5)])
    for i in range(5):
        assert (
            await client.post("/api/watchlist", json={"symbol": f"C{i}USDT"}, headers=user())
        ).status == 200
    response = await client.post("/api/watchlist", json={"symbol": "BTCUSDT"}, headers=user())
    assert response.status == 403
    assert (await response.json())["error"] == "watchlist_full"


@pytest.mark.parametrize(
    "body", [b'{"symbol": "NOPE"}', b"not json", b'{"symbol": ""}', b'{"sym": "BTC"}', b"[]"]
)
async def test_bad_watchlist_bodies_are_400(client: TestClient, body: bytes) -> None:
    response = await client.post("/api/watchlist", data=body, headers=user())
    assert response.status == 400
    assert set(await response.json()) == {"error", "detail"}


async def test_oversized_api_body_is_413_json(client: TestClient) -> None:
    response = await client.post("/api/watchlist", data=io.BytesIO(b"x" * (1024 * 1024 + 1)), headers=user())
    assert response.status == 413
    assert (await response.json())["error"] == "payload_too_large"


# --- settings ---------------------------------------------------------------------------


async def test_settings_read_and_write_as_the_bot_stores_them(client: TestClient, db) -> None:
    await set_tier(db, 1001, "pro")
    body = await (await client.get("/api/settings", headers=user())).json()
    assert body == {
        "spikeMultiple": None, "minQuoteVolume": None, "alertTypes": ["SPIKE", "HALF_UPDATE", "FULL_UPDATE"],
        "watchlistOnly": False, "quietStart": None, "quietEnd": None, "timezone": "UTC", "paused": False,
        "dailyCap": None,
    }  # fmt: skip
    update = {"spikeMultiple": 5.0, "quietStart": "22:00", "quietEnd": "07:00", "timezone": "UTC+3"}
    response = await client.put("/api/settings", json=update | {"paused": True}, headers=user())
    assert response.status == 200
    body = await response.json()
    assert body["spikeMultiple"] == 5.0 and body["paused"] is True
    assert body["quietStart"] == "22:00" and body["timezone"] == "Etc/GMT-3"
    row = await db.fetchrow("SELECT spike_multiple, paused, timezone FROM user_settings WHERE user_id = 1001")
    assert tuple(row) == (5.0, True, "Etc/GMT-3")


async def test_a_free_user_sets_and_removes_a_daily_cap_and_bad_values_are_400(
    client: TestClient, db
) -> None:
    response = await client.put("/api/settings", json={"dailyCap": 20}, headers=user())
    assert response.status == 200 and (await response.json())["dailyCap"] == 20
    assert await db.fetchval("SELECT daily_cap FROM user_settings WHERE user_id = 1001") == 20
    assert (await (await client.get("/api/settings", headers=user())).json())["dailyCap"] == 20
    for bad in (7, 0, -5, 1000, 2.5, "ten", True):
        response = await client.put("/api/settings", json={"dailyCap": bad}, headers=user())
        assert response.status == 400, bad
        assert (await response.json())["error"] == "bad_input"
    assert await db.fetchval("SELECT daily_cap FROM user_settings WHERE user_id = 1001") == 20
    response = await client.put("/api/settings", json={"dailyCap": None}, headers=user())
    assert response.status == 200 and (await response.json())["dailyCap"] is None
    assert await db.fetchval("SELECT daily_cap FROM user_settings WHERE user_id = 1001") is None


async def test_concurrent_saves_of_watchlist_only_set_it_and_never_cancel_each_other(
    client: TestClient, db
) -> None:
    """Two devices (or a double tap) save the same switch at once: each save sets the value it
    carries; a toggle computed from a read outside the transaction would undo the other."""
    await client.get("/api/settings", headers=user())
    for wanted in (True, False, True):
        answers = await asyncio.gather(
            *(client.put("/api/settings", json={"watchlistOnly": wanted}, headers=user()) for _ in range(6))
        )
        assert [a.status for a in answers] == [200] * 6
        stored = await db.fetchval("SELECT watchlist_only FROM user_settings WHERE user_id = 1001")
        assert stored is wanted


async def test_free_user_changing_a_pro_field_is_403_tier_required(client: TestClient) -> None:
    response = await client.put("/api/settings", json={"spikeMultiple": 5.0}, headers=user())
    assert response.status == 403
    assert (await response.json())["error"] == "tier_required"
    # Sending back what GET gave is no change, and pause is free for everyone.
    current = await (await client.get("/api/settings", headers=user())).json()
    response = await client.put("/api/settings", json=current | {"paused": True}, headers=user())
    assert response.status == 200


async def test_updates_alert_types_are_elite_only(client: TestClient, db) -> None:
    await set_tier(db, 1001, "pro")
    response = await client.put("/api/settings", json={"alertTypes": ["SPIKE"]}, headers=user())
    assert response.status == 200
    response = await client.put(
        "/api/settings", json={"alertTypes": ["SPIKE", "FULL_UPDATE"]}, headers=user()
    )
    assert response.status == 403


async def test_updates_without_spike_are_refused_by_the_bots_own_rule(client: TestClient, db) -> None:
    await set_tier(db, 1001, "elite")
    response = await client.put("/api/settings", json={"alertTypes": ["FULL_UPDATE"]}, headers=user())
    assert response.status == 400
    body = await response.json()
    assert body["detail"] == {
        "field": "alertTypes",
        "message": "updates follow a SPIKE: keep SPIKE to get updates",
    }
    stored = await db.fetchval("SELECT alert_types FROM user_settings WHERE user_id = 1001")
    assert stored in (None, ["SPIKE", "HALF_UPDATE", "FULL_UPDATE"])
    response = await client.put(
        "/api/settings", json={"alertTypes": ["SPIKE", "FULL_UPDATE"]}, headers=user()
    )
    assert response.status == 200


@pytest.mark.parametrize(
    "update",
    [
        {"spikeMultiple": 3.3},
        {"minQuoteVolume": 1.0},
        {"alertTypes": []},
        {"alertTypes": ["NOPE"]},
        {"quietStart": "25:00", "quietEnd": "07:00"},
        {"quietStart": "22:00"},
        {"timezone": "Mars/Olympus"},
        {"paused": "maybe"},
        {"unknown": 1},
    ],
)
async def test_bad_settings_are_400(client: TestClient, db, update: dict[str, object]) -> None:
    await set_tier(db, 1001, "pro")
    response = await client.put("/api/settings", json=update, headers=user())
    assert response.status == 400, await response.text()


# --- plans and the ingest reader ------------------------------------------------------------


async def test_plans_list_the_tier_table_and_the_current_plan(client: TestClient, db) -> None:
    body = await (await client.get("/api/plans")).json()
    assert [p["tier"] for p in body["plans"]] == ["free", "pro", "elite"]
    elite = body["plans"][2]
    assert elite == {
        "tier": "elite", "delayMinutes": 0, "history": 100, "watchlist": None, "ownThresholds": True,
        "updates": True, "liveStream": True, "starsPrice": 750, "onSale": True, "offer": "new",
    }  # fmt: skip
    assert body["current"] == {"tier": "free", "tierExpiresAt": None}
    await set_tier(db, 1001, "pro", NOW + timedelta(days=3))
    body = await (await client.get("/api/plans", headers=user())).json()
    assert body["current"]["tier"] == "pro"


def offers(body: dict[str, list[dict[str, object]]]) -> dict[object, tuple[object, object]]:
    return {p["tier"]: (p["onSale"], p["offer"]) for p in body["plans"]}


async def test_plans_say_which_plans_the_entitlement_rule_sells_to_the_caller(client: TestClient, db) -> None:
    """The page hides nothing the API would sell and offers nothing POST .../invoice would refuse
    with 409: the same rule (core.entitlements.offer) answers both."""
    public = await (await client.get("/api/plans")).json()
    assert offers(public) == {"free": (False, None), "pro": (True, "new"), "elite": (True, "new")}
    await set_tier(db, 1001, "pro", NOW + timedelta(days=3))
    pro = await (await client.get("/api/plans", headers=user())).json()
    assert offers(pro) == {"free": (False, None), "pro": (True, "renewal"), "elite": (True, "upgrade")}
    await db.execute(
        "INSERT INTO subscriptions (user_id, provider, external_id, tier, period_end, renews)"
        " VALUES (1001, 'stars', 'charge-1', 'pro', $1, true)",
        NOW + timedelta(days=3),
    )
    renewing = await (await client.get("/api/plans", headers=user())).json()
    assert offers(renewing) == {
        "free": (False, None), "pro": (False, "subscribed"), "elite": (True, "change"),
    }  # fmt: skip
    await db.execute("DELETE FROM subscriptions")
    await set_tier(db, 1001, "elite", None)  # elite with no end
    elite = await (await client.get("/api/plans", headers=user())).json()
    assert offers(elite) == {"free": (False, None), "pro": (False, "lower"), "elite": (False, "forever")}


async def test_volume_alerts_lists_the_original_json(client: TestClient, db) -> None:
    alert_id = await add_alert(db, "BTCUSDT", NOW - timedelta(minutes=16))
    body = orjson.loads(await (await client.get("/api/volume-alerts")).read())
    assert [a["id"] for a in body["alerts"]] == [alert_id]
    assert body["alerts"][0]["alertType"] == "SPIKE" and body["alerts"][0]["volumeRatio"] == 3.5


async def test_candle_answers_are_shared_for_a_few_seconds(client: TestClient, db, redis, names) -> None:
    start = NOW - timedelta(minutes=10)
    await add_minutes(db, "BTCUSDT", start, 10)
    url = "/api/candles?symbol=BTCUSDT&interval=1m&limit=10"
    first, second = await asyncio.gather(*(client.get(url) for _ in range(2)))
    assert await first.json() == await second.json()
    await db.execute("UPDATE candles_1m SET close = 1 WHERE symbol = 'BTCUSDT'")
    cached = await (await client.get(url)).json()
    assert cached["candles"][0]["c"] == 100.5
    keys = [key async for key in redis.scan_iter(match=names.answer_cache("candles:*"))]
    assert len(keys) == 1 and 0 < await redis.ttl(keys[0]) <= 5
    await redis.delete(*keys)
    client.server.app[ANSWERS].clear_local()
    assert (await (await client.get(url)).json())["candles"][0]["c"] == 1.0
