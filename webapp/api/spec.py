"""The API's route table: each route with its models, so one table both registers the
handlers and generates the OpenAPI document (webapp/api/openapi.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from core.errors import BadInput

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Auth = Literal["public", "optional", "required", "api_key"]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ApiRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    response: type[BaseModel] | None
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    auth: Auth
    errors: tuple[int, ...]
    tag: str


@dataclass
class ApiSpec:
    """Like aiohttp's RouteTableDef, with the models each route speaks."""

    routes: list[ApiRoute] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        response: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
        auth: Auth = "optional",
        errors: tuple[int, ...] = (),
        tag: str = "api",
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            summary = (handler.__doc__ or handler.__name__).strip().splitlines()[0]
            self.routes.append(
                ApiRoute(method, path, handler, summary, response, query, body, auth, errors, tag)
            )
            return handler

        return register

    def add_to(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, route.handler)


def _problems(exc: ValidationError) -> list[dict[str, object]]:
    return [
        {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as `model`; BadInput (400) naming each bad field."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise BadInput(_problems(exc)) from None


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body as `model`; BadInput (400) for bad JSON or a bad field."""
    raw = await request.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadInput("the body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadInput(_problems(exc)) from None


def respond(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(by_alias=True), status=status, content_type="application/json"
    )


API = ApiSpec()  # every /api route, registered by the modules of webapp/api
