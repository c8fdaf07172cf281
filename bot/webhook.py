"""Webhook mode: aiogram's own `SimpleRequestHandler`, mounted by the webapp at
`POST /webhooks/telegram` (`webapp.telegram_webhook`).

Telegram sends every update with the `X-Telegram-Bot-Api-Secret-Token` header set to the
`secret_token` given to `setWebhook`: TELEGRAM_WEBHOOK_SECRET, or when that is not set a value
derived from the bot token (`webhook_secret`), so `volspike bot` (which registers the webhook)
and `volspike webapp` (which receives it) agree without more configuration.

- A request without the right secret gets 401 JSON and is not processed; a body that is not an
  update gets 400 JSON.
- An update is answered at once and handled in the background (`handle_in_background=True`):
  Telegram waits for no handler, and a slow one never makes it time out and redeliver.
- Telegram redelivers an update it did not see answered: an `update_id` already taken is answered
  200 and not handled again (`UpdateLedger`, a Redis key per update with a TTL). When Redis is
  unavailable the update is handled (a rare duplicate reply beats a dropped command).
- On shutdown the updates still being handled get `DRAIN_TIMEOUT` seconds to finish.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from pydantic import ValidationError
from redis.asyncio import Redis

from core.redis_names import RedisNames
from core.secret_compare import same_secret
from core.settings import Settings
from core.tasks import finish_or_cancel
from db.unavailable import REDIS_UNAVAILABLE

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
UPDATE_TTL = 24 * 3600  # seconds an update_id is remembered (Telegram keeps updates for 24 h)
DRAIN_TIMEOUT = 10.0


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


class UpdateLedger:
    """Which update ids were already taken: `SET key NX EX ttl`, one key per update."""

    def __init__(self, redis: Redis, names: RedisNames, *, ttl: int = UPDATE_TTL) -> None:
        self.redis = redis
        self.names = names
        self.ttl = ttl

    async def first_time(self, update_id: int) -> bool:
        key = self.names.telegram_update(update_id)
        try:
            return bool(await self.redis.set(key, b"1", nx=True, ex=self.ttl))
        except REDIS_UNAVAILABLE as exc:
            log.warning(
                "update ledger unavailable; handling the update",
                extra={"update": update_id, "error": repr(exc)},
            )
            return True


class WebhookHandler(SimpleRequestHandler):
    """aiogram's handler with JSON errors and duplicate updates answered without handling."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        *,
        secret_token: str | None,
        ledger: UpdateLedger,
        **data: Any,
    ) -> None:
        super().__init__(dispatcher, bot, handle_in_background=True, secret_token=secret_token, **data)
        self.ledger = ledger

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        """aiogram's check, safe for any header bytes (a non-ASCII header is simply wrong)."""
        return self.secret_token is None or same_secret(telegram_secret_token, self.secret_token)

    async def handle(self, request: web.Request) -> web.Response:
        if not self.verify_secret(request.headers.get(SECRET_HEADER, ""), self.bot):
            return _error(401, "unauthorized", "bad or missing secret token")
        try:
            update = Update.model_validate(await request.json(), context={"bot": self.bot})
        # RecursionError: JSON nested deeper than the parser's stack (an attacker's, never Telegram's)
        except (ValueError, ValidationError, RecursionError) as exc:
            return _error(400, "bad_input", f"not a Telegram update: {type(exc).__name__}")
        if not await self.ledger.first_time(update.update_id):
            log.info("duplicate update ignored", extra={"update": update.update_id})
            return web.json_response({})
        return await super().handle(request)  # answers at once; the update is handled in a task

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Wait (bounded) for the updates still being handled (aiogram keeps their tasks)."""
        cancelled = await finish_or_cancel(set(self._background_feed_update_tasks), timeout)
        if cancelled:
            log.warning("updates still being handled at shutdown were cancelled", extra={"count": cancelled})


def mount_webhook(
    app: web.Application,
    dispatcher: Dispatcher,
    bot: Bot,
    *,
    path: str,
    secret: str | None,
    ledger: UpdateLedger,
) -> WebhookHandler:
    """Register the handler at `path` and the dispatcher's startup/shutdown on `app`."""
    handler = WebhookHandler(dispatcher, bot, secret_token=secret, ledger=ledger)

    async def drain(_app: web.Application) -> None:
        await handler.drain()

    app.on_shutdown.append(drain)  # before the handler's own shutdown closes the bot session
    handler.register(app, path=path)
    setup_application(app, dispatcher, bot=bot)
    return handler
