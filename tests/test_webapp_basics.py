"""The webapp's foundation: JSON errors, /health, /metrics, oversized bodies."""

from __future__ import annotations

import io

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from webapp.app import create_app


@pytest.fixture
async def client(settings, pool, redis):
    app = create_app(settings, pool=pool, redis=redis)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"size": len(await request.read())})

    app.router.add_get("/boom", boom)
    app.router.add_post("/echo", echo)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_health_is_200_when_postgres_and_redis_answer(client: TestClient, redis, names) -> None:
    await redis.set(names.ingest_health, orjson.dumps({"ok": True, "symbols": 3}), ex=30)
    response = await client.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["postgres"]["ok"] and body["redis"]["ok"]
    assert body["services"]["ingest"] == {"ok": True, "symbols": 3}
    assert body["services"]["bot"]["ok"] is False


async def test_health_is_503_when_redis_is_down(settings, pool) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    app = create_app(settings, pool=pool, redis=dead)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/health")
        assert response.status == 503
        body = await response.json()
        assert body["redis"]["ok"] is False and body["postgres"]["ok"] is True
    await dead.aclose()


async def test_metrics_is_prometheus_text(client: TestClient) -> None:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "python_info" in await response.text()


async def test_unknown_path_and_wrong_method_are_json_errors(client: TestClient) -> None:
    response = await client.get("/nope")
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"
    response = await client.post("/health")
    assert response.status == 405
    assert (await response.json())["error"] == "method_not_allowed"


async def test_unhandled_exception_is_500_json_without_traceback(client: TestClient) -> None:
    response = await client.get("/boom")
    assert response.status == 500
    text = await response.text()
    assert orjson.loads(text) == {"error": "internal_error", "detail": None}
    assert "secret internals" not in text and "Traceback" not in text


async def test_oversized_body_is_413_json(client: TestClient) -> None:
    response = await client.post("/echo", data=io.BytesIO(b"x" * (2 * 1024 * 1024)))
    assert response.status == 413
    assert (await response.json())["error"] == "payload_too_large"
    response = await client.post("/echo", data=b"x" * 100)
    assert (await response.json())["size"] == 100
