"""The project's own error hierarchy, mapped once to HTTP and once to bot replies.

A subclass names its HTTP status and machine-readable code in its class line
(`class NotFound(AppError, status=404, code="not_found")`); what it leaves out it inherits."""

from __future__ import annotations


class AppError(Exception):
    """Base of every error we raise on purpose."""

    status = 500
    code = "internal_error"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None) -> None:
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, detail: object = None) -> None:
        super().__init__(detail)
        self.detail = detail


class BadInput(AppError, status=400, code="bad_input"):
    """The request or command is malformed."""


class Unauthorized(AppError, status=401, code="unauthorized"):
    """No valid credentials came with the request."""


class Forbidden(AppError, status=403, code="forbidden"):
    """The caller is known but may not do this."""


class NotFound(AppError, status=404, code="not_found"):
    """What the request names does not exist (or is not the caller's to see)."""


class Conflict(AppError, status=409, code="conflict"):
    """The request contradicts the current state."""


class Unavailable(AppError, status=503, code="unavailable"):
    """A dependency (PostgreSQL) does not answer; the caller may retry."""


class UnknownSymbol(BadInput, code="unknown_symbol"):
    """The symbol is not in the universe."""


class TierRequired(Forbidden, code="tier_required"):
    """The caller's tier does not include this (the detail names the tier that does)."""


class WatchlistFull(Forbidden, code="watchlist_full"):
    """The watchlist already holds as many symbols as the tier allows."""


class RateLimited(AppError, status=429, code="too_many_requests"):
    """Too many requests; `retry_after` seconds until the window ends."""

    def __init__(self, retry_after: int, detail: object = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ConfigError(Exception):
    """A setting is missing or malformed; start-up stops with one clear line (exit 2)."""


class ServiceUnreachable(Exception):
    """PostgreSQL or Redis did not answer after a bounded retry (exit 1)."""
