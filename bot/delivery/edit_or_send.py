"""Edit a chat's message, else send a new one: the one way an update, a burst digest and the daily
cap's summary reach a chat that may already have their message.

With a message to edit, it is edited. When Telegram refuses the edit (the message is gone or can no
longer be edited) the text goes out as a new message in the same attempt: a refusal is an answer
that nothing changed, so nothing is sent twice. "Message is not modified" is a success (the
message already reads so). Any other failure is returned as it is, to be classified by the sender
like a failed sendMessage.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum

from aiogram import Bot
from aiogram.exceptions import ClientDecodeError, TelegramAPIError
from aiogram.types import InlineKeyboardMarkup

from bot.delivery import metrics
from bot.delivery.send_failures import Kind, SendFailure, classify, classify_edit

log = logging.getLogger(__name__)


class Way(StrEnum):
    """How the text reached the chat (the values are the metrics' labels)."""

    EDITED = "edited"
    NOT_MODIFIED = "not_modified"  # the message already read so: counted as edited
    REFUSED = "refused"  # Telegram refused the edit: sent as a new message
    NEW = "new"  # nothing to edit: sent as a new message


@dataclass(frozen=True, slots=True)
class Posted:
    message_id: int
    way: Way

    @property
    def edited(self) -> bool:
        return self.way in (Way.EDITED, Way.NOT_MODIFIED)


async def edit_or_send(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    keyboard: InlineKeyboardMarkup | None = None,
    edit: int | None = None,
    paid: bool = False,
    timeout: int,
) -> Posted | SendFailure:
    """Edit message `edit` of the chat to `text` (None: there is none), or send `text` as a new
    message (a paid broadcast when `paid`). The time spent is observed in `SEND_SECONDS`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        way = Way.NEW
        if edit is not None:
            try:
                await bot.edit_message_text(
                    text=text,
                    chat_id=chat_id,
                    message_id=edit,
                    reply_markup=keyboard,
                    request_timeout=timeout,
                )
                return Posted(edit, Way.EDITED)
            except (TelegramAPIError, ClientDecodeError) as exc:
                failure = classify_edit(exc)
                if failure.kind is Kind.NOT_MODIFIED:
                    return Posted(edit, Way.NOT_MODIFIED)
                if failure.kind is not Kind.EDIT_REFUSED:
                    return failure
                log.info(
                    "edit refused: sent as a new message",
                    extra={"chat": chat_id, "message_id": edit, "error": failure.error},
                )
                way = Way.REFUSED
        try:
            message = await bot.send_message(
                chat_id,
                text,
                reply_markup=keyboard,
                allow_paid_broadcast=True if paid else None,
                request_timeout=timeout,
            )
        except (TelegramAPIError, ClientDecodeError) as exc:
            return classify(exc)
        return Posted(message.message_id, way)
    finally:
        metrics.SEND_SECONDS.observe(loop.time() - started)
