"""The composition root shared by `volspike ingest|bot|webapp|run`.

It opens PostgreSQL and Redis once, hands them to each service and runs the services under the
supervisor (`volspike.supervisor`): a service that crashes (PostgreSQL or Redis restarting under
it, a bug) is restarted with backoff while the others keep serving (each restart is recorded in
Redis, so /health says which service is crash-looping); only a bad setting ends the
process. On cancellation (SIGTERM/SIGINT) every service stops within the grace period.
"""

from __future__ import annotations

import logging

from db.pool import create_pool
from volspike.redis_client import create_redis
from volspike.redis_names import RedisNames
from volspike.service_crashes import reporter
from volspike.settings import Settings
from volspike.supervisor import ServiceFactory, supervise

log = logging.getLogger(__name__)


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
        await supervise(jobs, on_crash=reporter(redis, names))
        return 0
    finally:
        await redis.aclose()
        await pool.close()
