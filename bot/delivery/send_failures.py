"""What a failed sendMessage means for the message: known not sent, or perhaps delivered.

At most once rests on this split. Telegram delivers a message when its server has read the
request, whatever happens to the answer afterwards; so a failure is only "not sent" when the
request never reached Telegram, or when Telegram answered that it refused it:

- **not sent, retry later**: the connection could not be opened (refused, DNS, TLS handshake,
  connect timeout) — the request was never written;
- **rate limited**: 429 with `parameters.retry_after`;
- **blocked**: 403 (the user blocked the bot, the bot left the group) or 400 "chat not found";
- **migrated**: 400 with `parameters.migrate_to_chat_id` (a group became a supergroup);
- **token rejected**: 401, or 404 for sendMessage (a method that always exists): the bot token is
  revoked or wrong; every other message would fail the same way;
- **rejected**: any other 4xx answer (malformed text, entity too large): retrying cannot help;
- **ambiguous**: everything after the request was written — a timeout, a reset or a disconnect
  before the answer, a 5xx, an answer that is not the Bot API's JSON. Telegram may have
  delivered it, so it is never sent again.

An editMessageText (an update edits the chat's message of its symbol-hour) fails the same ways,
and two more (`classify_edit`):

- **edit refused**: 400 "message to edit not found" (the user deleted it), "message can't be
  edited" (too old, or not editable), "MESSAGE_ID_INVALID": Telegram answered that it changed
  nothing, so the update may go out as a new message in the same attempt;
- **not modified**: 400 "message is not modified": the message already reads exactly so (a
  success: the user sees the update).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiohttp import ClientConnectorError, ConnectionTimeoutError


class Kind(StrEnum):
    NOT_SENT = "not_sent"
    RATE_LIMITED = "rate_limited"
    BLOCKED = "blocked"
    MIGRATED = "migrated"
    TOKEN_REJECTED = "token_rejected"
    REJECTED = "rejected"
    AMBIGUOUS = "ambiguous"
    EDIT_REFUSED = "edit_refused"  # editMessageText only
    NOT_MODIFIED = "not_modified"  # editMessageText only


@dataclass(frozen=True, slots=True)
class SendFailure:
    kind: Kind
    error: str
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None


def classify(exc: TelegramAPIError | ClientDecodeError) -> SendFailure:
    """The meaning of an exception raised by aiogram's `send_message`."""
    if isinstance(exc, ClientDecodeError):
        return SendFailure(Kind.AMBIGUOUS, f"undecodable answer: {exc.message}")
    message = exc.message
    if isinstance(exc, TelegramRetryAfter):
        return SendFailure(Kind.RATE_LIMITED, message, retry_after=exc.retry_after)
    if isinstance(exc, TelegramMigrateToChat):
        return SendFailure(Kind.MIGRATED, message, migrate_to_chat_id=exc.migrate_to_chat_id)
    if isinstance(exc, TelegramForbiddenError):
        return SendFailure(Kind.BLOCKED, message)
    if isinstance(exc, TelegramBadRequest):
        kind = Kind.BLOCKED if "chat not found" in message.lower() else Kind.REJECTED
        return SendFailure(kind, message)
    if isinstance(exc, TelegramUnauthorizedError | TelegramNotFound):
        return SendFailure(Kind.TOKEN_REJECTED, message)
    if isinstance(exc, TelegramEntityTooLarge):  # a TelegramNetworkError, but an answer (413)
        return SendFailure(Kind.REJECTED, message)
    if isinstance(exc, TelegramNetworkError):
        if isinstance(exc.__cause__, ClientConnectorError | ConnectionTimeoutError):
            return SendFailure(Kind.NOT_SENT, message)
        return SendFailure(Kind.AMBIGUOUS, message)
    if isinstance(exc, TelegramServerError):
        return SendFailure(Kind.AMBIGUOUS, message)
    # Another 4xx answer (409, 420, ...): Telegram answered, and did not take the message.
    return SendFailure(Kind.REJECTED, f"{type(exc).__name__}: {message}")


# Telegram's descriptions of an edit it refused without changing anything (lower case).
_EDIT_REFUSALS = ("message to edit not found", "message can't be edited", "message_id_invalid")


def classify_edit(exc: TelegramAPIError | ClientDecodeError) -> SendFailure:
    """The meaning of an exception raised by aiogram's `edit_message_text`."""
    if isinstance(exc, TelegramBadRequest):
        described = exc.message.lower()
        if "message is not modified" in described:
            return SendFailure(Kind.NOT_MODIFIED, exc.message)
        if any(refusal in described for refusal in _EDIT_REFUSALS):
            return SendFailure(Kind.EDIT_REFUSED, exc.message)
    return classify(exc)
