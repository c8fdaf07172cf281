"""GET /metrics: Prometheus text from this process's registry.

It answers only a loopback client (a scraper on the same host: the client address of
`webapp.client_address`, and never a request that carries forwarding headers without coming
through a trusted proxy) or, when `METRICS_TOKEN` is
set, a request with `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time).
"""

from __future__ import annotations

import ipaddress

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from core.errors import Forbidden
from core.secret_compare import same_secret
from webapp import keys
from webapp.client_address import forwarded_by_untrusted


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _bearer_ok(request: web.Request) -> bool:
    token = request.app[keys.SETTINGS].metrics_token
    if token is None:
        return False
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return same_secret(given, token.get_secret_value())


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics (loopback, or the METRICS_TOKEN bearer)."""
    if not (_bearer_ok(request) or (_loopback(request.remote) and not forwarded_by_untrusted(request))):
        raise Forbidden("/metrics answers on loopback or with the METRICS_TOKEN bearer")
    body = generate_latest(REGISTRY)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
