"""The bot service: the aiogram Bot and Dispatcher, and `run_bot`, its entry point."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.utils.i18n import I18n
from aiohttp import web
from redis.asyncio import Redis

from bot.chart_image import ChartRenderer
from bot.delivery import SenderState, run_delivery
from bot.handlers import get_routers
from bot.heartbeat import run_heartbeat
from bot.i18n import create_i18n
from bot.menu import setup_menu
from bot.middlewares import setup_middlewares
from bot.payments.scheduler import run_scheduler
from bot.polling import poll_as_leader
from bot.storage import SharedRedisStorage
from bot.webhook import UpdateLedger, mount_webhook, webhook_secret
from core.clock import Clock, SystemClock
from core.errors import ConfigError
from core.redis_names import RedisNames
from core.settings import Settings
from db.metrics_server import start_metrics_server

log = logging.getLogger(__name__)


def build_bot(settings: Settings) -> Bot:
    if settings.bot_token is None:
        raise ConfigError("invalid setting BOT_TOKEN: required to run the bot")
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(
        settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


def build_dispatcher(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, *, i18n: I18n, clock: Clock
) -> Dispatcher:
    """The Dispatcher with every router; long-lived objects reach handlers as workflow data."""
    names = RedisNames(settings.redis_prefix)
    dp = Dispatcher(
        storage=SharedRedisStorage(redis, names),
        settings=settings,
        pool=pool,
        redis=redis,
        names=names,
        clock=clock,
        i18n=i18n,
        charts=ChartRenderer(),
    )
    setup_middlewares(dp, i18n)
    dp.include_routers(*get_routers())
    return dp


def mount_telegram_webhook(
    app: web.Application, settings: Settings, pool: asyncpg.Pool, redis: Redis, clock: Clock, path: str
) -> None:
    """Webhook mode: the same Dispatcher as `volspike bot` answers Telegram's POSTs at `path` of
    the webapp's `app` (the composition root hands this to `webapp.app.create_app`)."""
    bot = build_bot(settings)
    dispatcher = build_dispatcher(settings, pool, redis, i18n=create_i18n(), clock=clock)
    ledger = UpdateLedger(redis, RedisNames(settings.redis_prefix))
    mount_webhook(app, dispatcher, bot, path=path, secret=webhook_secret(settings), ledger=ledger)


async def run_bot(
    settings: Settings, pool: asyncpg.Pool, redis: Redis, *, clock: Clock | None = None
) -> None:
    """Run until cancelled: long polling (or, with TELEGRAM_WEBHOOK_URL, the webhook registration;
    updates then arrive at the webapp's `/webhooks/telegram`), the delivery worker, the tier
    lifecycle scheduler and a heartbeat."""
    clock = clock or SystemClock()
    names = RedisNames(settings.redis_prefix)
    i18n = create_i18n()
    bot = build_bot(settings)
    metrics = None
    try:
        if settings.bot_metrics_port is not None:  # the delivery metrics, for a bot in its own process
            metrics = await start_metrics_server("0.0.0.0", settings.bot_metrics_port, service="bot")
        dp = build_dispatcher(settings, pool, redis, i18n=i18n, clock=clock)
        me = await bot.get_me()
        await setup_menu(bot, settings, i18n)
        webhook = settings.telegram_webhook_url is not None
        allowed = dp.resolve_used_update_types()
        if webhook:
            await bot.set_webhook(
                f"{settings.telegram_webhook_url}",
                secret_token=webhook_secret(settings),
                allowed_updates=allowed,
            )
        else:
            await bot.delete_webhook(drop_pending_updates=False)
        log.info("bot started", extra={"bot": me.username, "mode": "webhook" if webhook else "polling"})
        state = SenderState()
        async with asyncio.TaskGroup() as tasks:
            if not webhook:
                polling = poll_as_leader(settings.database_url, dp, bot, allowed_updates=allowed)
                tasks.create_task(polling, name="bot-polling")
            tasks.create_task(
                run_delivery(bot, settings, pool, redis, i18n, clock=clock, state=state), name="bot-delivery"
            )
            tasks.create_task(run_scheduler(pool, bot, settings, i18n, clock), name="bot-lifecycle")
            tasks.create_task(
                run_heartbeat(
                    redis,
                    names,
                    mode="webhook" if webhook else "polling",
                    username=me.username,
                    clock=clock,
                    problem=lambda: state.stopped,
                    changed=state.changed,
                ),
                name="bot-heartbeat",
            )
    finally:
        if metrics is not None:
            await metrics.cleanup()
        await bot.session.close()
