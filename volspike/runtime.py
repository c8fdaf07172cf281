"""The composition root shared by `volspike ingest|bot|webapp|run`.

It opens PostgreSQL and Redis once, hands them to each service and runs the services under the
supervisor (`core.supervisor`): a service that crashes (PostgreSQL or Redis restarting under
it, a bug) is restarted with backoff while the others keep serving; only a bad setting ends the
process. On cancellation (SIGTERM/SIGINT) every service stops within the grace period.
"""

from __future__ import annotations

import logging

from core.settings import Settings
from core.supervisor import ServiceFactory, supervise
from db.pool import create_pool
from db.redis_client import create_redis

log = logging.getLogger(__name__)


async def run_services(settings: Settings, *, ingest: bool, bot: bool, webapp: bool) -> int:
    pool = await create_pool(settings.database_url, max_size=12 if ingest else 8)
    try:
        redis = await create_redis(settings.redis_url)
    except BaseException:
        await pool.close()
        raise
    jobs: dict[str, ServiceFactory] = {}
    try:
        if ingest:
            from core.redis_names import RedisNames
            from ingest.leadership import lead_shard
            from ingest.service import run_ingest

            names = RedisNames(settings.redis_prefix)
            jobs["ingest"] = lambda: lead_shard(  # only the holder of the shard's lock runs ingest
                settings.database_url,
                settings.shard,
                redis,
                names,
                lambda: run_ingest(settings, pool, redis, freeze_gc=True),
            )
        if bot:
            from bot.app import run_bot

            jobs["bot"] = lambda: run_bot(settings, pool, redis)
        elif webapp and ingest:
            log.warning("BOT_TOKEN is not set: the bot is off; ingest and webapp run")
        if webapp:
            from webapp.app import run_webapp

            jobs["webapp"] = lambda: run_webapp(settings, pool, redis, freeze_gc=True)
        await supervise(jobs)
        return 0
    finally:
        await redis.aclose()
        await pool.close()
