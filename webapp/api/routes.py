"""Registers the JSON API on the app and opens what its handlers share."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from db.publisher import AlertPublisher
from webapp import keys
from webapp.api import (
    alerts,
    candles,
    markets,
    me,
    plans,
    record,
    settings,
    udf,
    volume_alerts,
    watchlist,
    what_if,
)
from webapp.api.openapi import OPENAPI, OpenApiCache, openapi
from webapp.api.spec import API
from webapp.cache import AnswerCache
from webapp.universe import SymbolUniverse

HANDLER_MODULES = (
    alerts,
    candles,
    markets,
    me,
    plans,
    record,
    settings,
    volume_alerts,
    watchlist,
    what_if,
    udf,
)


async def api_ctx(app: web.Application) -> AsyncIterator[None]:
    """The symbol universe, the answer cache and the alert publisher of the ingest endpoint."""
    app[keys.UNIVERSE] = SymbolUniverse(app[keys.POOL])
    app[keys.ANSWERS] = AnswerCache(app[keys.REDIS], app[keys.NAMES])
    publisher = AlertPublisher(app[keys.POOL], app[keys.REDIS], app[keys.NAMES])
    app[volume_alerts.PUBLISHER] = publisher
    try:
        yield
    finally:
        await publisher.close()


def setup_api(app: web.Application) -> None:
    """Add every /api route and /api/openapi.json (call after the pool/Redis cleanup_ctx)."""
    assert HANDLER_MODULES  # imported for their @API.route registrations
    app[OPENAPI] = OpenApiCache()
    app[markets.TABLES] = markets.MarketTables()
    app.cleanup_ctx.append(api_ctx)
    API.add_to(app)
    app.router.add_get("/api/openapi.json", openapi)
