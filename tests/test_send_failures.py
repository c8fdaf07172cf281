"""Which sendMessage failures are known not sent and which are ambiguous (bot.delivery.send_failures).

The end-to-end cases (refused, 5xx, timeout and reset after receipt, 429, 401, migrate) run through
aiogram's real session in test_sender_faults.py; these pin the classes a local server cannot
produce on demand (a connect timeout, a TLS failure at connect, a 413, an undecodable answer).
"""

from __future__ import annotations

import pytest
from aiogram.exceptions import (
    ClientDecodeError,
    RestartingTelegram,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiohttp import ClientConnectorError, ConnectionTimeoutError, ServerDisconnectedError, SocketTimeoutError
from aiohttp.client_reqrep import ConnectionKey

from bot.delivery.send_failures import Kind, classify

METHOD = SendMessage(chat_id=1, text="x")
KEY = ConnectionKey("api.telegram.org", 443, True, True, None, None, None, None)


def network(cause: BaseException) -> TelegramNetworkError:
    exc = TelegramNetworkError(METHOD, f"{type(cause).__name__}: {cause}")
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (network(ClientConnectorError(KEY, ConnectionRefusedError(111, "refused"))), Kind.NOT_SENT),
        (network(ConnectionTimeoutError("connect timeout")), Kind.NOT_SENT),
        (network(TimeoutError()), Kind.AMBIGUOUS),  # the total timeout: the request may be written
        (network(SocketTimeoutError("read timeout")), Kind.AMBIGUOUS),
        (network(ServerDisconnectedError()), Kind.AMBIGUOUS),
        (network(ConnectionResetError(104, "reset")), Kind.AMBIGUOUS),
        (TelegramServerError(METHOD, "Internal Server Error"), Kind.AMBIGUOUS),
        (RestartingTelegram(METHOD, "Service Unavailable: restart"), Kind.AMBIGUOUS),
        (ClientDecodeError("Failed to decode object", ValueError("<html>"), "<html>"), Kind.AMBIGUOUS),
        (TelegramRetryAfter(METHOD, "Too Many Requests", retry_after=7), Kind.RATE_LIMITED),
        (TelegramForbiddenError(METHOD, "Forbidden: bot was blocked by the user"), Kind.BLOCKED),
        (TelegramBadRequest(METHOD, "Bad Request: chat not found"), Kind.BLOCKED),
        (TelegramBadRequest(METHOD, "Bad Request: can't parse entities"), Kind.REJECTED),
        (TelegramEntityTooLarge(METHOD, "Request Entity Too Large"), Kind.REJECTED),
        (TelegramConflictError(METHOD, "Conflict"), Kind.REJECTED),
        (TelegramAPIError(METHOD, "Flood wait"), Kind.REJECTED),
        (TelegramUnauthorizedError(METHOD, "Unauthorized"), Kind.TOKEN_REJECTED),
        (TelegramNotFound(METHOD, "Not Found"), Kind.TOKEN_REJECTED),
        (TelegramMigrateToChat(METHOD, "group chat was upgraded", migrate_to_chat_id=-100123), Kind.MIGRATED),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, Kind) else "",
)
def test_each_failure_is_known_not_sent_or_ambiguous(exc: TelegramAPIError | ClientDecodeError, kind: Kind):
    assert classify(exc).kind is kind


def test_the_rate_limit_and_the_new_chat_id_are_carried():
    assert classify(TelegramRetryAfter(METHOD, "Too Many Requests", retry_after=7)).retry_after == 7
    migrated = classify(TelegramMigrateToChat(METHOD, "upgraded", migrate_to_chat_id=-100123))
    assert migrated.migrate_to_chat_id == -100123
