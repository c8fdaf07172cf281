"""/api/openapi.json: an OpenAPI 3.1 document naming every route the app serves."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient, TestServer

from webapp.app import create_app


async def test_every_registered_route_is_in_the_openapi_document(settings, pool, redis) -> None:
    app = create_app(settings, pool=pool, redis=redis)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/openapi.json")
        assert response.status == 200
        doc = await response.json()
        assert doc["openapi"].startswith("3.1")
        served = set()
        for resource in app.router.resources():
            info = resource.get_info()
            path = info.get("path") or info.get("formatter") or info.get("prefix")  # static folders too
            for route in resource:
                if route.method not in ("HEAD", "*"):
                    served.add((re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path), route.method.lower()))
        documented = {(path, method) for path, item in doc["paths"].items() for method in item}
        assert served <= documented, served - documented
        expected = ["/api/me", "/api/alerts", "/api/markets", "/api/candles", "/api/watchlist"]
        expected += ["/api/settings", "/api/plans", "/api/volume-alerts/ingest", "/udf/history", "/ws"]
        for path in expected:
            assert path in doc["paths"], path


async def test_api_operations_reference_their_models(settings, pool, redis) -> None:
    app = create_app(settings, pool=pool, redis=redis)
    async with TestClient(TestServer(app)) as client:
        doc = await (await client.get("/api/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    candles = doc["paths"]["/api/candles"]["get"]
    params = {p["name"]: p for p in candles["parameters"]}
    assert set(params) >= {"symbol", "interval", "from", "to", "limit"} and params["symbol"]["required"]
    assert params["limit"]["schema"]["maximum"] == 1000
    ok = candles["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.rsplit("/", 1)[1] in schemas
    assert set(schemas["CandlesPage"]["properties"]) == {"symbol", "interval", "candles", "markers"}
    put = doc["paths"]["/api/settings"]["put"]
    assert put["security"] == [{"tma": []}] and "403" in put["responses"] and "413" in put["responses"]
    body_ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "spikeMultiple" in schemas[body_ref]["properties"]
    assert doc["paths"]["/api/watchlist/{symbol}"]["delete"]["parameters"][0]["in"] == "path"
    assert schemas["ErrorBody"]["required"] == ["error"]


async def test_the_ingest_endpoint_documents_200_as_the_original_product_answered(
    settings, pool, redis
) -> None:
    """The original poster counts only 200 as posted; the document says what the endpoint answers."""
    app = create_app(settings, pool=pool, redis=redis)
    async with TestClient(TestServer(app)) as client:
        doc = await (await client.get("/api/openapi.json")).json()
    responses = doc["paths"]["/api/volume-alerts/ingest"]["post"]["responses"]
    assert "200" in responses and "201" not in responses
