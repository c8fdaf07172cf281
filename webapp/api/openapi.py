"""GET /api/openapi.json: an OpenAPI 3.1 document generated from the route table and its
pydantic models (JSON Schema 2020-12 is OpenAPI 3.1's schema dialect).

Routes registered outside the API table (pages, /health, webhooks, UDF, /ws) are listed too,
from the app's router, with the first line of their handler's docstring, so the document
names every route the app serves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from core import __version__
from webapp.api.models import ErrorBody
from webapp.api.spec import API, ApiRoute

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _openapi_path(path: str) -> str:
    return _PARAM.sub(r"{\1}", path)


def _query_parameters(model: type[BaseModel], schema: dict[str, Any]) -> list[dict[str, Any]]:
    params = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _security(route: ApiRoute) -> list[dict[str, list[str]]]:
    if route.auth == "required":
        return [{"tma": []}]
    if route.auth == "optional":
        return [{}, {"tma": []}]
    if route.auth == "api_key":
        return [{"apiKey": []}]
    return []


def build_document(app: web.Application, extra_routes: list[ApiRoute] | None = None) -> dict[str, Any]:
    routes = API.routes + (extra_routes or [])
    wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = {(ErrorBody, "serialization")}
    for route in routes:
        wanted.update((m, "validation") for m in (route.query, route.body) if m is not None)
        if route.response is not None:
            wanted.add((route.response, "serialization"))
    mapping, defs = models_json_schema(
        sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1])), ref_template=REF, by_alias=True
    )
    schemas: dict[str, Any] = defs.get("$defs", {})

    def ref(model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        return dict(mapping[(model, mode)])

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.handler.__name__,
            "tags": [route.tag],
            "responses": {},
        }
        if route.query is not None:
            query_name = ref(route.query, "validation")["$ref"].rsplit("/", 1)[-1]
            query_schema = schemas.get(query_name, {})
            op["parameters"] = _query_parameters(route.query, query_schema)
        path_params = _PARAM.findall(route.path)
        if path_params:
            op.setdefault("parameters", []).extend(
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in path_params
            )
        if route.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(route.body, "validation")}},
            }
        op["responses"]["200"] = {
            "description": "OK",
            **({"content": {"application/json": {"schema": ref(route.response)}}} if route.response else {}),
        }
        errors = set(route.errors) | {429, 500}
        if route.auth == "required":
            errors.add(401)
        if route.body is not None:
            errors |= {400, 413}
        for status in sorted(errors):
            op["responses"][str(status)] = {
                "description": "Error",
                "content": {"application/json": {"schema": ref(ErrorBody)}},
            }
        security = _security(route)
        if security:
            op["security"] = security
        paths.setdefault(_openapi_path(route.path), {})[route.method.lower()] = op

    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if not path:
            continue
        for served in resource:
            method = served.method.lower()
            if method in ("head", "*"):
                continue
            item = paths.setdefault(_openapi_path(path), {})
            if method not in item:
                name = getattr(served.handler, "__name__", "handler")
                doc = (getattr(served.handler, "__doc__", None) or name).strip()
                item[method] = {
                    "summary": doc.splitlines()[0],
                    "operationId": f"{method}_{name}",
                    "responses": {"200": {"description": "OK"}},
                }
    return {
        "openapi": "3.1.0",
        "info": {"title": "VolSpike API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "tma": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`tma <initData>`: the Mini App's raw initData, signed by Telegram",
                },
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


@dataclass
class OpenApiCache:
    """The document, built on the first request (the router is complete by then)."""

    document: dict[str, Any] | None = None


OPENAPI = web.AppKey("openapi_document", OpenApiCache)


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this app."""
    cache = request.app[OPENAPI]
    if cache.document is None:
        cache.document = build_document(request.app)
    return web.json_response(cache.document)
