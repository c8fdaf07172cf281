"""The project's own error hierarchy, mapped once to HTTP and once to bot replies."""


class AppError(Exception):
    """Base of every error we raise on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, detail: object = None) -> None:
        super().__init__(detail)
        self.detail = detail


class BadInput(AppError):
    status = 400
    code = "bad_input"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class UnknownSymbol(BadInput):
    code = "unknown_symbol"


class TierRequired(Forbidden):
    """The caller's tier does not include this (the detail names the tier that does)."""

    code = "tier_required"


class WatchlistFull(Forbidden):
    code = "watchlist_full"


class RateLimited(AppError):
    """Too many requests; `retry_after` seconds until the window ends."""

    status = 429
    code = "too_many_requests"

    def __init__(self, retry_after: int, detail: object = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(AppError):
    """A dependency (PostgreSQL) does not answer; the caller may retry."""

    status = 503
    code = "unavailable"


class Conflict(AppError):
    status = 409
    code = "conflict"


class ConfigError(Exception):
    """A setting is missing or malformed; start-up stops with one clear line (exit 2)."""


class ServiceUnreachable(Exception):
    """PostgreSQL or Redis did not answer after a bounded retry (exit 1)."""
