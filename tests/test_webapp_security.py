"""Security headers, rate limits, /metrics access, /health/db and /health/binance."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from core.clock import ManualClock
from simulator.config import SimConfig
from simulator.server import SimServer
from tests.miniapp_harness import BOT_TOKEN, NOW, init_data, tma
from webapp.app import create_app
from webapp.security import TELEGRAM_WEB_CLIENTS


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


async def _client(settings, db, redis, clock, **overrides) -> TestClient:
    app_settings = settings.model_copy(update={"bot_token": SecretStr(BOT_TOKEN), **overrides})
    client = TestClient(TestServer(create_app(app_settings, pool=db, redis=redis, clock=clock)))
    await client.start_server()
    return client


@pytest.fixture
async def client(settings, db, redis, clock):
    client = await _client(settings, db, redis, clock)
    yield client
    await client.close()


async def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/api/plans", "/nope", "/health"):
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        ancestors = csp.split("frame-ancestors")[1].split(";")[0]
        assert all(origin in ancestors for origin in TELEGRAM_WEB_CLIENTS)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


async def test_per_ip_limit_answers_429_with_retry_after_until_the_window_ends(
    settings, db, redis, clock
) -> None:
    client = await _client(settings, db, redis, clock, api_rate_per_ip=3)
    try:
        for _ in range(3):
            assert (await client.get("/api/plans")).status == 200
        response = await client.get("/api/plans")
        assert response.status == 429
        assert (await response.json())["error"] == "too_many_requests"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert (await client.get("/health")).status == 200  # only /api, /udf and /ws are limited
        clock.advance(timedelta(seconds=int(response.headers["Retry-After"])))
        assert (await client.get("/api/plans")).status == 200
    finally:
        await client.close()


async def test_per_user_limit_counts_each_user_apart(settings, db, redis, clock) -> None:
    client = await _client(settings, db, redis, clock, api_rate_per_user=2)
    try:
        ada, bob = tma(init_data(1001)), tma(init_data(1002))
        assert (await client.get("/api/me", headers=ada)).status == 200
        assert (await client.get("/api/me", headers=ada)).status == 200
        response = await client.get("/api/me", headers=ada)
        assert response.status == 429 and "Retry-After" in response.headers
        assert (await client.get("/api/me", headers=bob)).status == 200
    finally:
        await client.close()


async def test_metrics_answer_loopback_but_not_a_proxied_client(client: TestClient) -> None:
    assert (await client.get("/metrics")).status == 200
    response = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status == 403
    assert (await response.json())["error"] == "forbidden"


async def test_metrics_token_bearer_opens_metrics(settings, db, redis, clock) -> None:
    client = await _client(settings, db, redis, clock, metrics_token=SecretStr("s3cret-token"))
    try:
        proxied = {"X-Forwarded-For": "203.0.113.9"}
        ok = await client.get("/metrics", headers=proxied | {"Authorization": "Bearer s3cret-token"})
        assert ok.status == 200 and "python_info" in await ok.text()
        wrong = await client.get("/metrics", headers=proxied | {"Authorization": "Bearer nope"})
        assert wrong.status == 403
    finally:
        await client.close()


async def test_health_db_is_200_when_postgres_answers(client: TestClient) -> None:
    response = await client.get("/health/db")
    assert response.status == 200
    assert (await response.json())["postgres"]["ok"] is True


async def test_health_binance_pings_the_exchange_and_reads_ingest_streams(
    settings, db, redis, names, clock
) -> None:
    async with SimServer(SimConfig(symbols=2)) as sim:
        client = await _client(settings, db, redis, clock, binance_rest_url=sim.rest_url)
        try:
            response = await client.get("/health/binance")
            assert response.status == 503  # the exchange answers, but ingest is not running
            body = await response.json()
            assert body["rest"]["ok"] is True and body["streams"]["ok"] is False
            snapshot = {"ok": True, "connections": [{"state": "open"}], "lag_ms": 12.0}
            await redis.set(names.ingest_health, orjson.dumps(snapshot), ex=30)
            response = await client.get("/health/binance")
            assert response.status == 200
            assert (await response.json())["streams"]["lag_ms"] == 12.0
        finally:
            await client.close()


async def test_health_binance_is_503_when_the_exchange_does_not_answer(client: TestClient) -> None:
    response = await client.get("/health/binance")  # settings point Binance at 127.0.0.1:9
    assert response.status == 503
    assert (await response.json())["rest"]["ok"] is False
