"""GET /health: 200 only when PostgreSQL and Redis answer; services report through Redis."""

from __future__ import annotations

import asyncio
import time

import orjson
from aiohttp import web

from webapp.keys import NAMES, POOL, REDIS

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


async def health(request: web.Request) -> web.Response:
    names = request.app[NAMES]
    postgres, redis = await asyncio.gather(_postgres(request), _redis(request))
    ok = bool(postgres["ok"] and redis["ok"])
    services: dict[str, object] = {"webapp": {"ok": True}}
    for name, key in (("ingest", names.ingest_health), ("bot", names.bot_health)):
        state = await _service(request, key) if redis["ok"] else None
        services[name] = state if state is not None else {"ok": False, "state": "not running"}
    body = {"status": "ok" if ok else "degraded", "postgres": postgres, "redis": redis, "services": services}
    return web.json_response(body, status=200 if ok else 503)
