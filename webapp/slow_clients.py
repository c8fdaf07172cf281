"""Bounds on slow clients, so a connection that sends nothing or trickles holds nothing for long.

- Headers: aiohttp's `keepalive_timeout` (set from `WEBAPP_HEADER_TIMEOUT` in `run_webapp`) closes
  a connection that has not sent a complete request line and headers within that many seconds of
  connecting or of its previous answer: an idle connection and a trickled header alike. aiohttp
  has no separate header timeout; this is its one knob that covers both.
- Body: `read_body_in_time` reads a request's body (at most `MAX_BODY`) within
  `WEBAPP_BODY_TIMEOUT` seconds before any handler runs, else answers 408 and closes. Handlers
  then read the buffered copy (`request.read()`, `.json()`, `.post()` for urlencoded forms).
  Multipart bodies are left to their handler (none of ours takes one). After an answer, the
  rest of a body the handler did not read is drained for at most `LINGER` seconds (aiohttp's
  `lingering_time`, 10 s by default), then the connection closes.
- A client that leaves half way through its body is a warning (`webapp.errors`), not an error.

A reverse proxy in front (deploy/kubernetes) usually has its own such timeouts; these are the
app's own line, which holds without one.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from webapp import keys
from webapp.errors import json_error

log = logging.getLogger(__name__)

LINGER = 1.0  # seconds


@web.middleware
async def read_body_in_time(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.body_exists and not request.content_type.startswith("multipart/"):
        timeout = request.app[keys.SETTINGS].webapp_body_timeout
        try:
            async with asyncio.timeout(timeout):
                await request.read()
        except TimeoutError:
            log.warning(
                "request body not received in time; closing",
                extra={"path": request.path, "remote": request.remote, "timeout_s": timeout},
            )
            response = json_error(408, "request_timeout", f"the body did not arrive within {timeout:g} s")
            response.force_close()
            return response
    return await handler(request)
