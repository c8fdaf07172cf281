"""Bounds on slow clients, so a connection that sends nothing or trickles holds nothing for long.

- Headers: aiohttp's `keepalive_timeout` (set from `WEBAPP_HEADER_TIMEOUT` in `run_webapp`) closes
  a connection that has not sent a complete request line and headers within that many seconds of
  connecting or of its previous answer: an idle connection and a trickled header alike. aiohttp
  has no separate header timeout; this is its one knob that covers both.
- Body: `read_body_in_time` reads every request's body (at most `MAX_BODY`; JSON, forms,
  multipart, chunked alike) within `WEBAPP_BODY_TIMEOUT` seconds before any handler runs, else
  answers 408 and closes. Handlers then read the buffered copy (`request.read()`, `.json()`,
  `.post()`; a multipart body is handed to them as a stream over the buffered bytes, so
  `.post()` and `.multipart()` work as before). After an answer, the rest of a body the handler
  did not read is drained for at most `LINGER` seconds (aiohttp's `lingering_time`, 10 s by
  default), then the connection closes.
- A client that leaves half way through its body is a warning (`webapp.errors`), not an error.

A reverse proxy in front (deploy/kubernetes) usually has its own such timeouts; these are the
app's own line, which holds without one.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.typedefs import Handler

from webapp import keys
from webapp.errors import json_error

log = logging.getLogger(__name__)

LINGER = 1.0  # seconds


@web.middleware
async def read_body_in_time(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.body_exists:
        timeout = request.app[keys.SETTINGS].webapp_body_timeout
        try:
            async with asyncio.timeout(timeout):
                body = await request.read()
        except TimeoutError:
            log.warning(
                "request body not received in time; closing",
                extra={"path": request.path, "remote": request.remote, "timeout_s": timeout},
            )
            response = json_error(408, "request_timeout", f"the body did not arrive within {timeout:g} s")
            response.force_close()
            return response
        if request.content_type.startswith("multipart/"):
            # aiohttp parses multipart from the request's stream, not from the buffered copy.
            request._payload = _buffered_stream(request, body)
    return await handler(request)


def _buffered_stream(request: web.Request, body: bytes) -> StreamReader:
    """A finished stream holding `body` (its limit above the body's size, so feeding it never
    pauses the connection's reading)."""
    stream = StreamReader(request.protocol, max(len(body), 2**16), loop=asyncio.get_running_loop())
    stream.feed_data(body)
    stream.feed_eof()
    return stream
