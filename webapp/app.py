"""The aiohttp application factory and the webapp service entry point."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from core.clock import Clock, SystemClock
from core.redis_names import RedisNames
from core.settings import Settings
from db.http_server import ProductRunner
from db.pool import create_pool
from db.redis_client import create_redis
from webapp import keys, protocol_errors
from webapp.access_log import access_log
from webapp.api import invoice
from webapp.api.routes import setup_api
from webapp.auth import auth_middleware
from webapp.billing.routes import setup_billing
from webapp.client_address import real_client
from webapp.errors import MAX_BODY, error_middleware
from webapp.health import health, health_binance, health_db
from webapp.metrics import metrics
from webapp.pages import setup_pages
from webapp.security import add_security_headers, ip_rate_limit, user_rate_limit
from webapp.slow_clients import LINGER, read_body_in_time
from webapp.telegram_webhook import WebhookMount, setup_telegram_webhook
from webapp.workers import extra_workers, reuse_port
from webapp.ws import live_hub_ctx, live_socket

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    redis: Redis | None = None,
    clock: Clock | None = None,
    telegram_webhook: WebhookMount | None = None,
) -> web.Application:
    """Build the app. PostgreSQL and Redis are opened (and closed) by the app itself unless
    the caller hands in ones it owns, as `volspike run` does to share them between services.
    `telegram_webhook` is the bot's update handler, mounted in webhook mode (`webapp.telegram_webhook`);
    the composition root (`volspike.runtime.create_webapp`) passes it."""
    middlewares = [
        real_client,
        access_log,
        error_middleware,
        read_body_in_time,
        ip_rate_limit,
        auth_middleware,
        user_rate_limit,
    ]
    protocol_errors.install()
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
    app.on_response_prepare.append(add_security_headers)
    app[keys.SETTINGS] = settings
    app[keys.NAMES] = RedisNames(settings.redis_prefix)
    app[keys.CLOCK] = clock or SystemClock()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        own_pool = await create_pool(settings.database_url) if pool is None else None
        try:
            own_redis = await create_redis(settings.redis_url) if redis is None else None
        except BaseException:
            if own_pool is not None:
                await own_pool.close()
            raise
        opened_pool = own_pool or pool
        opened_redis = own_redis or redis
        assert opened_pool is not None and opened_redis is not None
        app[keys.POOL] = opened_pool
        app[keys.REDIS] = opened_redis
        try:
            yield
        finally:
            if own_redis is not None:
                await own_redis.aclose()
            if own_pool is not None:
                await own_pool.close()

    app.cleanup_ctx.append(resources)
    app.router.add_get("/health", health)
    app.router.add_get("/health/db", health_db)
    app.router.add_get("/health/binance", health_binance)
    app.router.add_get("/metrics", metrics)
    setup_telegram_webhook(app, settings, pool, redis, app[keys.CLOCK], telegram_webhook)
    setup_api(app)
    app.cleanup_ctx.append(live_hub_ctx)
    app.router.add_get("/ws", live_socket)
    setup_pages(app)
    invoice.setup(app)
    setup_billing(app)
    return app


async def run_webapp(
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    *,
    primary: bool = True,
    listening: Callable[[], None] | None = None,
    telegram_webhook: WebhookMount | None = None,
) -> None:
    """Serve until cancelled; the primary process also runs the other `WEBAPP_WORKERS - 1`
    (`webapp.workers`) for as long as it serves. `listening` is called once the port is bound."""
    app = create_app(settings, pool=pool, redis=redis, telegram_webhook=telegram_webhook)
    # keepalive_timeout bounds a connection's wait for a complete request head, lingering_time the
    # reading of an unread body after the answer (webapp.slow_clients).
    runner = ProductRunner(
        app, access_log=None, keepalive_timeout=settings.webapp_header_timeout, lingering_time=LINGER
    )
    await runner.setup()
    try:
        site = web.TCPSite(
            runner, settings.webapp_host, settings.webapp_port, reuse_port=reuse_port(settings)
        )
        await site.start()
        log.info("webapp listening", extra={"host": settings.webapp_host, "port": settings.webapp_port})
        if listening is not None:
            listening()
        if not primary:
            await asyncio.Event().wait()
        async with extra_workers(settings, functools.partial(run_webapp, telegram_webhook=telegram_webhook)):
            await asyncio.Event().wait()
    finally:
        await runner.cleanup()
