"""POST /webhooks/telegram: webhook mode for the bot (when TELEGRAM_WEBHOOK_URL is set).

The webapp process owns the update side in webhook mode: it builds the same Dispatcher as
`volspike bot` and mounts aiogram's request handler (`bot.webhook.mount_webhook`), checked
against the secret token. `volspike bot` then only registers the webhook and runs the delivery
worker, so the two can run as one process (`volspike run`) or as two. Without webhook mode the
path answers 404 JSON.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from core.clock import Clock
from core.errors import NotFound
from core.redis_names import RedisNames
from core.settings import Settings

WEBHOOK_PATH = "/webhooks/telegram"


def webhook_enabled(settings: Settings) -> bool:
    return settings.telegram_webhook_url is not None and settings.bot_token is not None


async def webhook_off(request: web.Request) -> web.StreamResponse:
    raise NotFound("webhook mode is off (TELEGRAM_WEBHOOK_URL is not set)")


def setup_telegram_webhook(
    app: web.Application, settings: Settings, pool: asyncpg.Pool | None, redis: Redis | None, clock: Clock
) -> None:
    """Mount the webhook (webhook mode needs the pool and Redis the composition root hands in).
    aiogram is imported only in webhook mode: it takes seconds to import."""
    if not webhook_enabled(settings):
        app.router.add_post(WEBHOOK_PATH, webhook_off)
        return
    if pool is None or redis is None:
        raise ValueError("webhook mode needs the shared pool and Redis client: pass them to create_app")
    from bot.app import build_bot, build_dispatcher
    from bot.i18n import create_i18n
    from bot.webhook import UpdateLedger, mount_webhook, webhook_secret

    bot = build_bot(settings)
    dispatcher = build_dispatcher(settings, pool, redis, i18n=create_i18n(), clock=clock)
    ledger = UpdateLedger(redis, RedisNames(settings.redis_prefix))
    mount_webhook(app, dispatcher, bot, path=WEBHOOK_PATH, secret=webhook_secret(settings), ledger=ledger)
