"""A service's own `/metrics` port (INGEST_METRICS_PORT, BOT_METRICS_PORT): prometheus_client's
default registry as Prometheus text, for a process that serves no webapp to scrape."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from db.http_server import ProductRunner

log = logging.getLogger(__name__)


async def _metrics_view(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def start_metrics_server(host: str, port: int, *, service: str = "ingest") -> web.AppRunner:
    """Serve `/metrics` on host:port; the caller awaits `runner.cleanup()` to stop it."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics_view)
    runner = ProductRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("%s metrics listening", service, extra={"host": host, "port": port})
    return runner
