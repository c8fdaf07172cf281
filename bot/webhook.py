"""Webhook mode: the aiohttp handler the webapp mounts at `POST /webhooks/telegram`.

Telegram sends every update with the `X-Telegram-Bot-Api-Secret-Token` header set to the
`secret_token` given to `setWebhook`: TELEGRAM_WEBHOOK_SECRET, or when that is not set a value
derived from the bot token (`webhook_secret`), so `volspike bot` (which registers the webhook)
and `volspike webapp` (which receives it) agree without more configuration. A request without the right
secret gets 403 JSON and is not processed. An update is processed before the answer, so a
crash mid-update makes Telegram redeliver it; handler errors are answered by the error router
and still get 200 (a redelivery would not fix them).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from volspike.settings import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def webhook_secret(settings: Settings) -> str | None:
    """The secret token for setWebhook and the header check (Telegram allows [A-Za-z0-9_-]{1,256})."""
    if settings.telegram_webhook_secret is not None:
        return settings.telegram_webhook_secret.get_secret_value()
    if settings.bot_token is None:
        return None
    token = settings.bot_token.get_secret_value().encode()
    return hmac.new(token, b"volspike-telegram-webhook", hashlib.sha256).hexdigest()


def _error(status: int, error: str, detail: object = None) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


def webhook_handler(dispatcher: Dispatcher, bot: Bot, secret: str | None) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        given = request.headers.get(SECRET_HEADER, "")
        if secret is not None and not hmac.compare_digest(given.encode(), secret.encode()):
            return _error(403, "forbidden", "bad or missing secret token")
        try:
            payload = await request.json()
            update = Update.model_validate(payload, context={"bot": bot})
        except (ValueError, ValidationError) as exc:
            return _error(400, "bad_input", f"not a Telegram update: {type(exc).__name__}")
        await dispatcher.feed_update(bot, update)
        return web.json_response({"ok": True})

    return handle
