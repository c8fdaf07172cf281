"""POST /api/volume-alerts/ingest: the original product's endpoint for external detectors,
through real HTTP, PostgreSQL, Redis and (for delivery) the Telegram look-alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from core.clock import ManualClock
from db.publisher import AlertPublisher
from tests.delivery_harness import add_user, running_delivery
from tests.fakes.telegram_api import FakeTelegram
from tests.miniapp_harness import add_symbols
from webapp.app import create_app

KEY = "ingest-key-0123456789"
DETECTED = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)


def payload(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "symbol": "BTCUSDT",
        "asset": "BTC",
        "currentVolume": 5_000_000_000,
        "previousVolume": 1_500_000_000,
        "volumeRatio": 3.33,
        "price": 97123.4,
        "fundingRate": 0.0001,
        "message": "BTC hourly volume $5.00B (3.33× prev) — VOLUME SPIKE!",
        "timestamp": "2026-03-02T12:07:30.000Z",
        "hourTimestamp": "2026-03-02T12:00:00.000Z",
        "isUpdate": False,
        "alertType": "SPIKE",
    }
    body.update(changes)
    return body


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(DETECTED)


async def _client(settings, db, redis, clock, **overrides) -> TestClient:
    await add_symbols(db, ["BTCUSDT", "ETHUSDT"])
    config = settings.model_copy(update={"alert_ingest_api_key": SecretStr(KEY), **overrides})
    client = TestClient(TestServer(create_app(config, pool=db, redis=redis, clock=clock)))
    await client.start_server()
    return client


@pytest.fixture
async def client(settings, db, redis, clock):
    client = await _client(settings, db, redis, clock)
    yield client
    await client.close()


async def test_good_key_stores_and_publishes_the_alert(client: TestClient, db, redis, names) -> None:
    response = await client.post("/api/volume-alerts/ingest", json=payload(), headers={"X-API-Key": KEY})
    assert response.status == 200
    body = await response.json()
    assert body["success"] is True and body["alertId"].isdigit()
    row = await db.fetchrow("SELECT * FROM alerts WHERE id = $1", int(body["alertId"]))
    assert row["symbol"] == "BTCUSDT" and row["alert_type"] == "SPIKE" and row["volume_ratio"] == 3.33
    assert row["hour_ts"] == datetime(2026, 3, 2, 12, tzinfo=UTC) and row["detected_at"] == DETECTED
    assert row["published_at"] is not None
    entries = await redis.xrange(names.alerts_stream)
    assert len(entries) == 1
    streamed = orjson.loads(entries[0][1][b"alert"])
    assert streamed["id"] == int(body["alertId"]) and streamed["alertType"] == "SPIKE"


async def test_a_duplicate_answers_the_first_id_and_publishes_nothing_more(
    client: TestClient, redis, names, clock: ManualClock
) -> None:
    clock.advance(timedelta(minutes=23))  # 12:30:30, when the HALF_UPDATE below is detected
    first = await (
        await client.post("/api/volume-alerts/ingest", json=payload(), headers={"X-API-Key": KEY})
    ).json()
    again = await client.post(
        "/api/volume-alerts/ingest",
        json=payload(timestamp="2026-03-02T12:09:00Z"),
        headers={"X-API-Key": KEY},
    )
    assert again.status == 200
    body = await again.json()
    assert body == {"success": True, "alertId": first["alertId"], "duplicate": True}
    assert await redis.xlen(names.alerts_stream) == 1
    update = await client.post(
        "/api/volume-alerts/ingest",
        json=payload(alertType="HALF_UPDATE", isUpdate=True, timestamp="2026-03-02T12:30:00Z"),
        headers={"X-API-Key": KEY},
    )
    assert update.status == 200  # another type of the same hour is another alert


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": KEY + "x"}, {"X-API-Key": ""}])
async def test_a_wrong_or_missing_key_is_401(client: TestClient, db, headers: dict[str, str]) -> None:
    response = await client.post("/api/volume-alerts/ingest", json=payload(), headers=headers)
    assert response.status == 401
    assert (await response.json())["error"] == "unauthorized"
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        orjson.dumps(payload(symbol="NOPEUSDT")),
        orjson.dumps(payload(currentVolume=0)),
        orjson.dumps(payload(price=-1)),
        orjson.dumps(payload(alertType="MOON")),
        orjson.dumps(payload(isUpdate=True)),
        orjson.dumps(payload(hourTimestamp="2026-03-02T12:30:00Z")),
        orjson.dumps(payload(timestamp="2026-03-02T14:00:00Z")),
        orjson.dumps({k: v for k, v in payload().items() if k != "price"}),
    ],
)
async def test_bad_json_is_400(client: TestClient, db, body: bytes) -> None:
    response = await client.post("/api/volume-alerts/ingest", data=body, headers={"X-API-Key": KEY})
    assert response.status == 400
    assert set(await response.json()) == {"error", "detail"}
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0


# What the attack run posted (with the key), and what else breaks ingest's own alert rule.
ATTACKS = {
    "year-1-hour": payload(hourTimestamp="0001-01-01T00:00:00Z", timestamp="0001-01-01T00:07:00Z"),
    "infinity-volume": payload(currentVolume="Infinity"),
    "nan-ratio": payload(volumeRatio="NaN"),
    "nan-previous": payload(previousVolume="NaN"),
    "1e308-volume": payload(currentVolume=1e308, volumeRatio=1e308 / 1_500_000_000),
    "1e308-price": payload(price=1e308),
    "infinity-price": payload(price="Infinity"),
    "infinity-funding": payload(fundingRate="-Infinity"),
    "zero-previous": payload(previousVolume=0),
    "ratio-not-current-over-previous": payload(volumeRatio=30.0),
    "next-hour": payload(hourTimestamp="2026-03-02T13:00:00Z", timestamp="2026-03-02T13:01:00Z"),
    "hour-before-previous": payload(hourTimestamp="2026-03-02T10:00:00Z", timestamp="2026-03-02T10:07:00Z"),
    "timestamp-ahead-of-now": payload(timestamp="2026-03-02T12:59:00Z"),
    "year-9999": payload(hourTimestamp="9999-12-31T23:00:00Z", timestamp="9999-12-31T23:07:00Z"),
    "spike-detected-before-its-hour": payload(timestamp="2026-03-02T11:59:00Z"),
    "spike-detected-after-its-hour": payload(
        hourTimestamp="2026-03-02T11:00:00Z", timestamp="2026-03-02T12:05:00Z"
    ),
}


@pytest.mark.parametrize("body", ATTACKS.values(), ids=ATTACKS.keys())
async def test_an_alert_that_breaks_the_alert_rule_is_400_and_stores_nothing(
    client: TestClient, db, redis, names, body: dict[str, object]
) -> None:
    response = await client.post("/api/volume-alerts/ingest", json=body, headers={"X-API-Key": KEY})
    assert response.status == 400, await response.text()
    answer = await response.json()
    assert answer["error"] == "bad_input"
    assert await db.fetchval("SELECT count(*) FROM alerts") == 0
    assert await redis.xlen(names.alerts_stream) == 0
    feed = await client.get("/api/volume-alerts")
    assert feed.status == 200


async def test_a_full_update_of_the_previous_hour_detected_after_its_close_is_taken(
    client: TestClient,
) -> None:
    body = payload(
        alertType="FULL_UPDATE",
        isUpdate=True,
        hourTimestamp="2026-03-02T11:00:00Z",
        timestamp="2026-03-02T12:05:00Z",
    )
    response = await client.post("/api/volume-alerts/ingest", json=body, headers={"X-API-Key": KEY})
    assert response.status == 200, await response.text()


async def test_the_previous_hour_is_taken(client: TestClient, clock: ManualClock) -> None:
    clock.advance(timedelta(hours=1))  # 13:07: 12:00 is now the previous hour
    response = await client.post("/api/volume-alerts/ingest", json=payload(), headers={"X-API-Key": KEY})
    assert response.status == 200


async def test_without_the_setting_the_endpoint_is_off(settings, db, redis, clock) -> None:
    client = await _client(settings, db, redis, clock, alert_ingest_api_key=None)
    try:
        response = await client.post("/api/volume-alerts/ingest", json=payload(), headers={"X-API-Key": KEY})
        assert response.status == 404
    finally:
        await client.close()


async def test_an_ingested_alert_is_delivered_through_the_normal_path(
    settings, db, redis, clock, client: TestClient
) -> None:
    await add_user(db, 501, tier="elite")
    async with FakeTelegram() as tg, running_delivery(settings, db, redis, tg, clock):
        response = await client.post("/api/volume-alerts/ingest", json=payload(), headers={"X-API-Key": KEY})
        assert response.status == 200
        calls = await tg.wait_for_call("sendMessage", 501)
        assert calls[0].text.startswith("<b>BTC hourly volume $5.00B (3.33× prev) — VOLUME SPIKE!</b>")
        alert_id = int((await response.json())["alertId"])
        status = await db.fetchval(
            "SELECT status FROM deliveries WHERE alert_id = $1 AND chat_id = 501", alert_id
        )
        assert status in ("sending", "sent")


async def test_a_row_left_by_the_attack_is_set_aside_and_the_feed_answers_everyone(
    client: TestClient, db, redis, names
) -> None:
    """The row the attack run's POST left before the endpoint checked (an hour of year 1, stored as
    -infinity) made GET /api/volume-alerts answer 500 for everyone; once the republisher has set it
    aside, the feed answers again (the public view: the free tier's delayed window)."""
    await db.execute(
        """
        INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume,
                            previous_volume, volume_ratio, price, funding_rate, simulated)
        VALUES ('BTCUSDT', 'BTC', 'SPIKE', '-infinity', '-infinity', 5e9, 1.5e9, 3.33, 97000, 0.0001, false)
        """
    )
    good = await client.post(
        "/api/volume-alerts/ingest", json=payload(symbol="ETHUSDT", asset="ETH"), headers={"X-API-Key": KEY}
    )
    assert good.status == 200
    await AlertPublisher(db, redis, names).republish_pending()
    feed = await client.get("/api/volume-alerts")
    assert feed.status == 200
    assert "BTCUSDT" not in [a["symbol"] for a in (await feed.json())["alerts"]]
    assert await db.fetchval("SELECT publish_error FROM alerts WHERE symbol = 'BTCUSDT'")
