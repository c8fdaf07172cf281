"""POST /webhooks/telegram: webhook mode for the bot (when TELEGRAM_WEBHOOK_URL is set).

The webapp process owns the update side in webhook mode: the composition root (`volspike.runtime`)
hands `create_app` the bot's mount (`bot.app.mount_telegram_webhook`: the same Dispatcher as
`volspike bot` behind aiogram's request handler, checked against the secret token), and the
webapp mounts it here. `volspike bot` then only registers the webhook and runs the delivery
worker, so the two can run as one process (`volspike run`) or as two. Without webhook mode the
path answers 404 JSON.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from core.clock import Clock
from core.errors import NotFound
from core.settings import Settings

WEBHOOK_PATH = "/webhooks/telegram"

WebhookMount = Callable[[web.Application, Settings, asyncpg.Pool, Redis, Clock, str], None]
"""Mounts the bot's update handler on the app at the path: (app, settings, pool, redis, clock, path)."""


def webhook_enabled(settings: Settings) -> bool:
    return settings.telegram_webhook_url is not None and settings.bot_token is not None


async def webhook_off(request: web.Request) -> web.StreamResponse:
    raise NotFound("webhook mode is off (TELEGRAM_WEBHOOK_URL is not set)")


def setup_telegram_webhook(
    app: web.Application,
    settings: Settings,
    pool: asyncpg.Pool | None,
    redis: Redis | None,
    clock: Clock,
    mount: WebhookMount | None,
) -> None:
    """Mount the webhook (webhook mode needs the pool and Redis the composition root hands in,
    and the bot's mount)."""
    if not webhook_enabled(settings):
        app.router.add_post(WEBHOOK_PATH, webhook_off)
        return
    if pool is None or redis is None:
        raise ValueError("webhook mode needs the shared pool and Redis client: pass them to create_app")
    if mount is None:
        raise ValueError("webhook mode needs the bot's update handler: pass telegram_webhook to create_app")
    mount(app, settings, pool, redis, clock, WEBHOOK_PATH)
