"""One structured log line per request: method, path (without the query string, which may
carry signed data), status, duration and client address."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("webapp.access")


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except asyncio.CancelledError:
        status = 499  # the client went away (or the server is shutting down) before an answer
        raise
    finally:
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "method": request.method,
                "path": request.path,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "remote": request.remote,
            },
        )
