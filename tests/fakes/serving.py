"""Serving a look-alike's aiohttp app on 127.0.0.1: the one start-up every fake server shares."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def serve(app: web.Application, host: str, port: int, **runner: Any) -> tuple[web.AppRunner, int]:
    """Start `app` on `host:port` (0: a free port); returns the runner to clean up and the port."""
    runner_ = web.AppRunner(app, access_log=None, **runner)
    await runner_.setup()
    site = web.TCPSite(runner_, host, port)
    await site.start()
    server = site._server
    assert server is not None
    return runner_, server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
