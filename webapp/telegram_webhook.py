"""POST /webhooks/telegram: webhook mode for the bot (when TELEGRAM_WEBHOOK_URL is set).

The webapp process owns the update side in webhook mode: it builds the same Dispatcher as
`volspike bot` and feeds it the updates Telegram posts, checked against the secret token.
`volspike bot` then only registers the webhook and runs the delivery worker, so the two can
run as one process (`volspike run`) or as two.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from volspike.errors import NotFound
from volspike.settings import Settings
from webapp import keys

WEBHOOK_HANDLER = web.AppKey("telegram_webhook_handler", object)


def webhook_enabled(settings: Settings) -> bool:
    return settings.telegram_webhook_url is not None and settings.bot_token is not None


async def telegram_webhook(request: web.Request) -> web.StreamResponse:
    handler = request.app.get(WEBHOOK_HANDLER)
    if handler is None:
        raise NotFound("webhook mode is off (TELEGRAM_WEBHOOK_URL is not set)")
    return await handler(request)  # type: ignore[operator,no-any-return]


async def telegram_webhook_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the bot and dispatcher for webhook mode; close the bot's session on shutdown."""
    settings = app[keys.SETTINGS]
    if not webhook_enabled(settings):
        yield
        return
    from bot.app import build_bot, build_dispatcher
    from bot.i18n import create_i18n
    from bot.webhook import webhook_handler, webhook_secret

    bot = build_bot(settings)
    dispatcher = build_dispatcher(
        settings, app[keys.POOL], app[keys.REDIS], i18n=create_i18n(), clock=app[keys.CLOCK]
    )
    app[WEBHOOK_HANDLER] = webhook_handler(dispatcher, bot, webhook_secret(settings))
    try:
        yield
    finally:
        await bot.session.close()
