"""Cancelling a user's Stars subscription at Telegram (`editUserStarSubscription` with
`is_canceled`): when a higher plan replaces it, and when an admin revokes or bans."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

log = logging.getLogger(__name__)


async def cancel_stars_subscription(bot: Bot, user_id: int, charge_id: str) -> bool:
    """Stop the subscription's renewal; False (logged) when Telegram refused it."""
    try:
        await bot.edit_user_star_subscription(
            user_id=user_id, telegram_payment_charge_id=charge_id, is_canceled=True
        )
    except TelegramAPIError as exc:
        log.warning(
            "stars subscription not cancelled",
            extra={"user_id": user_id, "charge_id": charge_id, "error": str(exc)},
        )
        return False
    return True
