"""GET /health: 200 only when PostgreSQL and Redis answer and no service is crash-looping under
the supervisor (`db.service_crashes`); services report through Redis."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
from aiohttp import web

from db.ingest_health import shards_snapshot
from db.service_crashes import crash_loops
from webapp.keys import CLOCK, NAMES, POOL, REDIS, SETTINGS

CHECK_TIMEOUT = 2.0


async def _postgres(request: web.Request) -> dict[str, object]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await request.app[POOL].fetchval("SELECT 1")
    except (OSError, TimeoutError, Exception) as exc:  # noqa: BLE001 - any failure means "down"
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _redis(request: web.Request) -> dict[str, object]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await request.app[REDIS].ping()
    except (OSError, TimeoutError, Exception) as exc:  # noqa: BLE001 - any failure means "down"
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _service(request: web.Request, key: str) -> dict[str, object] | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            raw = await request.app[REDIS].get(key)
    except (OSError, TimeoutError, Exception):  # noqa: BLE001 - reported through the redis check
        return None
    if raw is None:
        return None
    data: dict[str, object] = orjson.loads(raw)
    return data


async def _ingest_shards(request: web.Request) -> dict[str, object] | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await shards_snapshot(request.app[REDIS], request.app[NAMES])
    except (OSError, TimeoutError, Exception):  # noqa: BLE001 - reported through the redis check
        return None


async def _crash_loops(request: web.Request) -> dict[str, dict[str, object]]:
    now_ms = int(request.app[CLOCK].now().timestamp() * 1000)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await crash_loops(request.app[REDIS], request.app[NAMES], now_ms)
    except (OSError, TimeoutError, Exception):  # noqa: BLE001 - reported through the redis check
        return {}


async def health(request: web.Request) -> web.Response:
    names = request.app[NAMES]
    postgres, redis = await asyncio.gather(_postgres(request), _redis(request))
    looping = await _crash_loops(request) if redis["ok"] else {}
    ok = bool(postgres["ok"] and redis["ok"]) and not looping
    services: dict[str, object] = {"webapp": {"ok": True}}
    for name, key in (("ingest", names.ingest_health), ("bot", names.bot_health)):
        state = await _service(request, key) if redis["ok"] else None
        if state is None and name == "ingest" and redis["ok"]:
            state = await _ingest_shards(request)
        services[name] = state if state is not None else {"ok": False, "state": "not running"}
    for name, crash in looping.items():
        earlier = services.get(name)
        base = dict(earlier) if isinstance(earlier, dict) else {}
        services[name] = {**base, "ok": False, "state": "crash-looping", **crash}
    body = {"status": "ok" if ok else "degraded", "postgres": postgres, "redis": redis, "services": services}
    return web.json_response(body, status=200 if ok else 503)


async def health_db(request: web.Request) -> web.Response:
    """PostgreSQL alone: 200 when it answers."""
    postgres = await _postgres(request)
    return web.json_response({"postgres": postgres}, status=200 if postgres["ok"] else 503)


async def _binance_rest(request: web.Request) -> dict[str, object]:
    url = f"{request.app[SETTINGS].binance_rest_url}/fapi/v1/ping"
    started = time.perf_counter()
    try:
        timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            if response.status != 200:
                return {"ok": False, "status": response.status}
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def health_binance(request: web.Request) -> web.Response:
    """The exchange: its REST API answers /fapi/v1/ping, and ingest's streams (from its
    snapshot in Redis) are open. 200 only when both hold."""
    rest, ingest = await asyncio.gather(
        _binance_rest(request), _service(request, request.app[NAMES].ingest_health)
    )
    streams: dict[str, object] = (
        {"ok": False, "state": "ingest not running"}
        if ingest is None
        else {
            "ok": bool(ingest.get("ok")),
            "connections": ingest.get("connections"),
            "lag_ms": ingest.get("lag_ms"),
            "last_message_age_s": ingest.get("last_message_age_s"),
        }
    )
    ok = bool(rest["ok"] and streams["ok"])
    return web.json_response({"rest": rest, "streams": streams}, status=200 if ok else 503)
