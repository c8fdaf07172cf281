"""The webapp's own Bot API client: for the calls it makes itself (the Mini App's invoice links,
Stripe billing notices), on the same Bot API server (TELEGRAM_API_URL) and with the same HTML parse
mode as the bot's."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode

from core.settings import Settings


def telegram_bot(settings: Settings) -> Bot | None:
    """A Bot with BOT_TOKEN, or None when the token is not set (then payments are off)."""
    if settings.bot_token is None:
        return None
    return Bot(
        settings.bot_token.get_secret_value(),
        session=AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url)),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )
