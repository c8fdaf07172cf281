"""Control endpoints under /sim/...: spikes, clock, listings, faults, and what happened."""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from aiohttp import web

from .clock import SimClock
from .market import SpikeInfo, UnknownSymbol
from .payloads import symbol_entry
from .rest import json_response
from .universe import SymbolInfo


class Controllable(Protocol):
    """What the control endpoints drive: `SimServer` (named here by its methods, so this module
    does not import the server that mounts it)."""

    clock: SimClock

    def now_ms(self) -> int: ...
    def advance(self, seconds: float) -> int: ...
    def trigger_spike(self, symbol: str, multiple: float, *, min_quote_volume: float = 0.0) -> SpikeInfo: ...
    def schedule_spike(
        self,
        symbol: str,
        multiple: float,
        *,
        at_ms: int | None = None,
        minute_offset: float | None = None,
        min_quote_volume: float = 0.0,
    ) -> int: ...
    def list_symbol(
        self,
        symbol: str,
        *,
        ref_price: float | None = None,
        hourly_quote: float | None = None,
        onboard_ms: int | None = None,
    ) -> SymbolInfo: ...
    def delist_symbol(self, symbol: str, *, at_ms: int | None = None) -> SymbolInfo: ...
    def drop_connections(self, *, refuse_seconds: float = 0.0) -> int: ...
    def refuse_connections(self, seconds: float) -> None: ...
    def fail_rest(self, count: int, *, retry_after: int = 1, status: int = 429) -> None: ...
    def fault_path(
        self, path: str, *, stall: float = 0.0, status: int | None = None, count: int = 1 << 30
    ) -> None: ...
    def send_malformed(self, count: int) -> int: ...
    def forget_subscription(self, stream: str | None = None) -> int: ...
    def go_silent(self, seconds: float) -> None: ...
    def request_log(self, path: str | None = None) -> list[dict[str, Any]]: ...
    def clear_request_log(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...


class BadControl(Exception):
    pass


def _error(status: int, error: str, detail: Any = None) -> web.Response:
    return json_response({"error": error, "detail": detail}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadControl(f"body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadControl("body must be a JSON object")
    return data


def _num(data: dict[str, Any], name: str, default: float | None = None, *, minimum: float = 0.0) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadControl(f"`{name}` must be a number")
    if value < minimum:
        raise BadControl(f"`{name}` must be >= {minimum}")
    return float(value)


def _opt_num(data: dict[str, Any], name: str) -> float | None:
    return None if data.get(name) is None else _num(data, name)


def _str(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise BadControl(f"`{name}` must be a non-empty string")
    return value


def control_routes(sim: Controllable) -> list[web.RouteDef]:
    async def handle(request: web.Request, action: Any) -> web.Response:
        try:
            data = await _body(request) if request.method == "POST" else {}
            return json_response(action(data))
        except BadControl as e:
            return _error(400, "bad_request", str(e))
        except UnknownSymbol as e:
            return _error(404, "unknown_symbol", str(e.args[0]))
        except ValueError as e:
            return _error(409, "conflict", str(e))

    def spike(data: dict[str, Any]) -> Any:
        symbol = _str(data, "symbol")
        multiple = _num(data, "multiple", minimum=0.0)
        min_quote = _num(data, "min_quote_volume", 0.0)
        at = data.get("at")
        offset = _opt_num(data, "minute_offset")
        if at is not None or offset is not None:
            at_ms = sim.schedule_spike(
                symbol,
                multiple,
                at_ms=None if at is None else int(_num(data, "at")),
                minute_offset=offset,
                min_quote_volume=min_quote,
            )
            return {"scheduled": True, "symbol": symbol, "at": at_ms}
        return sim.trigger_spike(symbol, multiple, min_quote_volume=min_quote).as_dict()

    def advance(data: dict[str, Any]) -> Any:
        return {"serverTime": sim.advance(_num(data, "seconds"))}

    def list_symbol(data: dict[str, Any]) -> Any:
        info = sim.list_symbol(
            _str(data, "symbol"),
            ref_price=_opt_num(data, "price"),
            hourly_quote=_opt_num(data, "hourly_quote_volume"),
        )
        return symbol_entry(info, sim.now_ms())

    def delist_symbol(data: dict[str, Any]) -> Any:
        at = _opt_num(data, "at")
        info = sim.delist_symbol(_str(data, "symbol"), at_ms=None if at is None else int(at))
        return symbol_entry(info, sim.now_ms())

    def drop(data: dict[str, Any]) -> Any:
        return {"dropped": sim.drop_connections(refuse_seconds=_num(data, "refuse_seconds", 0.0))}

    def refuse(data: dict[str, Any]) -> Any:
        sim.refuse_connections(_num(data, "seconds"))
        return {"ok": True}

    def rest_errors(data: dict[str, Any]) -> Any:
        status = int(_num(data, "status", 429))
        if status not in (429, 418):
            raise BadControl("`status` must be 429 or 418")
        count = int(_num(data, "count"))
        sim.fail_rest(count, retry_after=int(_num(data, "retry_after", 1)), status=status)
        return {"ok": True, "count": count}

    def path_fault(data: dict[str, Any]) -> Any:
        path = _str(data, "path")
        status = _opt_num(data, "status")
        count = int(_num(data, "count", float(1 << 30)))
        sim.fault_path(
            path, stall=_num(data, "stall", 0.0), status=None if status is None else int(status), count=count
        )
        return {"ok": True, "path": path}

    def malformed(data: dict[str, Any]) -> Any:
        return {"connections": sim.send_malformed(int(_num(data, "count", 1)))}

    def forget(data: dict[str, Any]) -> Any:
        stream = data.get("stream")
        if stream is not None and (not isinstance(stream, str) or not stream):
            raise BadControl("`stream` must be a non-empty string")
        return {"forgotten": sim.forget_subscription(stream)}

    def silence(data: dict[str, Any]) -> Any:
        sim.go_silent(_num(data, "seconds"))
        return {"ok": True}

    def clear_requests(data: dict[str, Any]) -> Any:
        sim.clear_request_log()
        return {"ok": True}

    def stats(data: dict[str, Any]) -> Any:
        return sim.stats()

    def clock(data: dict[str, Any]) -> Any:
        return {"serverTime": sim.now_ms(), "startTime": sim.clock.start_ms, "speed": sim.clock.speed}

    def route(method: str, path: str, action: Any) -> web.RouteDef:
        async def handler(request: web.Request) -> web.Response:
            return await handle(request, action)

        return web.route(method, path, handler)

    async def requests_get(request: web.Request) -> web.Response:
        path = request.query.get("path")
        return json_response(sim.request_log(path))

    return [
        route("POST", "/sim/spike", spike),
        route("POST", "/sim/advance", advance),
        route("POST", "/sim/list", list_symbol),
        route("POST", "/sim/delist", delist_symbol),
        route("POST", "/sim/drop", drop),
        route("POST", "/sim/refuse", refuse),
        route("POST", "/sim/rest_errors", rest_errors),
        route("POST", "/sim/malformed", malformed),
        route("POST", "/sim/path_fault", path_fault),
        route("POST", "/sim/silence", silence),
        route("POST", "/sim/forget", forget),
        web.get("/sim/requests", requests_get),
        route("DELETE", "/sim/requests", clear_requests),
        route("GET", "/sim/stats", stats),
        route("GET", "/sim/clock", clock),
    ]
