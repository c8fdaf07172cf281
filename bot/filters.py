"""Filters the routers share. Like a handler, a filter takes what it needs by name from the
Dispatcher's workflow data (aiogram passes a filter only the arguments its signature names), so a
router is built without any settings."""

from __future__ import annotations

from aiogram.types import CallbackQuery, Message

from core.settings import Settings


async def from_admin(event: Message | CallbackQuery, settings: Settings) -> bool:
    """The update comes from one of ADMIN_IDS; anyone else's falls through to the next router."""
    return event.from_user is not None and event.from_user.id in settings.admin_ids
