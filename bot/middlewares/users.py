"""Loads (or creates, on first contact) the Telegram user behind an update as `data["user"]`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, User

from bot.models import BotUser
from core.clock import Clock
from core.i18n import pick_locale
from core.tiers import Tier, effective_tier
from db import users as users_db


class UserMiddleware(BaseMiddleware):
    """Updates without a human sender (channel posts, bots) pass through without `user`."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        sender: User | None = data.get("event_from_user")
        if sender is not None and not sender.is_bot:
            pool: asyncpg.Pool = data["pool"]
            clock: Clock = data["clock"]
            chat: Chat | None = data.get("event_chat")
            record = await users_db.upsert_seen(
                pool,
                sender.id,
                username=sender.username,
                first_name=sender.first_name,
                language=pick_locale(sender.language_code),
                in_private=chat is not None and chat.type == "private",
            )
            blocked: bool = record["blocked"]
            if blocked and chat is not None and chat.type == "private":
                # Writing to the bot in private again means they unblocked it: alerts resume.
                await users_db.clear_blocked(pool, sender.id)
                blocked = False
            data["user"] = BotUser(
                id=record["id"],
                language=record["language"],
                tier=effective_tier(Tier(record["tier"]), record["tier_expires_at"], clock.now()),
                tier_expires_at=record["tier_expires_at"],
                banned=record["banned"],
                blocked=blocked,
                created_at=record["created_at"],
            )
        return await handler(event, data)
