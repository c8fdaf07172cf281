"""One middleware maps every error to JSON `{"error", "detail"}`; no traceback leaves the server."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from core.errors import AppError, RateLimited

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # 1 MiB: webhooks and API bodies are small


def json_error(status: int, error: str, detail: object = None) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


_HTTP_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    408: "request_timeout",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AppError as exc:
        response = json_error(exc.status, exc.code, exc.detail)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        name = _HTTP_NAMES.get(exc.status, "http_error")
        return json_error(exc.status, name, exc.reason)
    except ConnectionResetError:  # aiohttp's "Connection lost": the client left during its body
        log.warning("client left before its request was read", extra={"path": request.path})
        return json_error(400, "bad_request", "the request ended early")
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return json_error(500, "internal_error", None)
