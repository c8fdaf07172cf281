"""The composition root shared by `volspike ingest|bot|webapp|run`.

It opens PostgreSQL and Redis once, hands them to each service and runs the services under the
supervisor (`core.supervisor`): a service that crashes (PostgreSQL or Redis restarting under
it, a bug) is restarted with backoff while the others keep serving (each restart is recorded in
Redis, so /health says which service is crash-looping); only a bad setting ends the
process. On cancellation (SIGTERM/SIGINT) every service stops within the grace period.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from core.redis_names import RedisNames
from core.settings import Settings
from core.supervisor import ServiceFactory, supervise
from db.pool import create_pool
from db.redis_client import create_redis
from db.service_crashes import reporter

if TYPE_CHECKING:
    import asyncpg
    from aiohttp import web
    from redis.asyncio import Redis

    from core.clock import Clock
    from webapp.telegram_webhook import WebhookMount

log = logging.getLogger(__name__)


def telegram_webhook(settings: Settings) -> WebhookMount | None:
    """The bot's update handler the webapp mounts at POST /webhooks/telegram in webhook mode
    (TELEGRAM_WEBHOOK_URL and BOT_TOKEN set); the bot is imported only then: aiogram takes seconds
    to import."""
    from webapp.telegram_webhook import webhook_enabled

    if not webhook_enabled(settings):
        return None
    from bot.app import mount_telegram_webhook

    return mount_telegram_webhook


def create_webapp(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    redis: Redis | None = None,
    clock: Clock | None = None,
) -> web.Application:
    """The webapp wired with the bot's webhook handler (`webapp.app.create_app` + `telegram_webhook`)."""
    from webapp.app import create_app

    return create_app(
        settings, pool=pool, redis=redis, clock=clock, telegram_webhook=telegram_webhook(settings)
    )


async def run_services(settings: Settings, *, ingest: bool, bot: bool, webapp: bool) -> int:
    pool = await create_pool(settings.database_url, max_size=12 if ingest else 8)
    try:
        redis = await create_redis(settings.redis_url)
    except BaseException:
        await pool.close()
        raise
    jobs: dict[str, ServiceFactory] = {}
    names = RedisNames(settings.redis_prefix)
    try:
        if ingest:
            from ingest.leadership import lead_shard
            from ingest.service import run_ingest

            jobs["ingest"] = lambda: lead_shard(  # only the holder of the shard's lock runs ingest
                settings.database_url,
                settings.shard,
                redis,
                names,
                lambda: run_ingest(settings, pool, redis),
            )
        if bot:
            from bot.app import run_bot

            jobs["bot"] = lambda: run_bot(settings, pool, redis)
        elif webapp and ingest:
            log.warning("BOT_TOKEN is not set: the bot is off; ingest and webapp run")
        if webapp:
            from webapp.app import run_webapp

            mount = telegram_webhook(settings)
            jobs["webapp"] = lambda: run_webapp(settings, pool, redis, telegram_webhook=mount)
        await supervise(jobs, on_crash=reporter(redis, names))
        return 0
    finally:
        await redis.aclose()
        await pool.close()
