"""The one way every HTTP server of the product is run (the webapp, its Telegram webhook, a
service's own `/metrics` port): `ProductRunner`, an `aiohttp.web.AppRunner` whose every answer
carries `Server: volspike` and no versions.

aiohttp names Python's and its own version in `Server` (`Python/3.11 aiohttp/3.x`). An
application's `on_response_prepare` hook (added here) covers the answers of its routes, also their
errors and the WebSocket handshake; the 400s aiohttp's HTTP parser gives a request it cannot
parse (a bad request line, header bytes, too many or too long headers) are made before any
application code runs, by the connection's handler (`RequestHandler.handle_error`), which is
therefore replaced too.
"""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

SERVER = "volspike"


async def name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the product's name, without versions."""
    response.headers[hdrs.SERVER] = SERVER


class _ConnectionHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)
        response.headers[hdrs.SERVER] = SERVER
        return response


class _Server(Server):
    def __init__(self, made: Server) -> None:
        super().__init__(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )

    def __call__(self) -> RequestHandler:
        return _ConnectionHandler(self, loop=self._loop, **self._kwargs)


class ProductRunner(web.AppRunner):
    """`web.AppRunner` for the product's servers: `Server: volspike` on every answer."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        app.on_response_prepare.append(name_the_server)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> Server:
        return _Server(await super()._make_server())
