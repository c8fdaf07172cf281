"""Which updates carry money: a pre-checkout query (Telegram waits up to 10 s for its answer) or a
message with `successful_payment` / `refunded_payment`. Flood control and the ban check let
these through: a banned user's checkout is refused by its handler, and a charge Telegram already
made (a subscription renewal, a refund) must be recorded whoever it belongs to."""

from __future__ import annotations

from aiogram.types import TelegramObject, Update


def is_payment_update(event: TelegramObject) -> bool:
    if not isinstance(event, Update):
        return False
    if event.pre_checkout_query is not None:
        return True
    message = event.message
    return message is not None and (
        message.successful_payment is not None or message.refunded_payment is not None
    )
