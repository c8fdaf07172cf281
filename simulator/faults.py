"""Fault injection state: forced REST errors, refused/dropped/silent WebSockets, malformed frames."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class ForcedError:
    status: int  # 429 or 418
    retry_after: int  # seconds


@dataclass(slots=True)
class PathFault:
    """Requests to one path: held ``stall`` seconds before any answer, then (with a ``status``)
    answered with that error instead; for the next ``count`` requests."""

    stall: float
    status: int | None
    count: int


class Faults:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._rest_remaining = 0
        self._rest_error = ForcedError(429, 1)
        self._refuse_until = 0.0
        self._silent_until = 0.0
        self._holding = False
        self._held: list[asyncio.Future[None]] = []
        self._paths: dict[str, PathFault] = {}

    # REST
    def fail_rest(self, count: int, *, retry_after: int = 1, status: int = 429) -> None:
        """Answer the next ``count`` REST requests with ``status`` and ``Retry-After``."""
        if status not in (429, 418):
            raise ValueError("status must be 429 or 418")
        self._rest_remaining = max(0, count)
        self._rest_error = ForcedError(status, max(0, retry_after))

    def take_rest_error(self) -> ForcedError | None:
        if self._rest_remaining <= 0:
            return None
        self._rest_remaining -= 1
        return self._rest_error

    @property
    def rest_errors_pending(self) -> int:
        return self._rest_remaining

    def fault_path(
        self, path: str, *, stall: float = 0.0, status: int | None = None, count: int = 1 << 30
    ) -> None:
        """Stall (``stall`` seconds) and/or fail (``status``) the next ``count`` requests to
        ``path``; ``count=0`` clears it."""
        if status is not None and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status")
        if count <= 0:
            self._paths.pop(path, None)
        else:
            self._paths[path] = PathFault(max(0.0, stall), status, count)

    def take_path_fault(self, path: str) -> PathFault | None:
        fault = self._paths.get(path)
        if fault is None:
            return None
        fault.count -= 1
        if fault.count <= 0:
            del self._paths[path]
        return fault

    # WebSocket
    def refuse_ws(self, seconds: float) -> None:
        self._refuse_until = max(self._refuse_until, self._monotonic() + seconds)

    def ws_refused(self) -> bool:
        return self._monotonic() < self._refuse_until

    def silence(self, seconds: float) -> None:
        self._silent_until = max(self._silent_until, self._monotonic() + seconds)

    def silent(self) -> bool:
        return self._monotonic() < self._silent_until

    def hold_handshakes(self) -> None:
        self._holding = True

    def release_handshakes(self, *, keep_holding: bool = False) -> int:
        self._holding = keep_holding
        held, self._held = self._held, []
        for waiter in held:
            if not waiter.done():
                waiter.set_result(None)
        return len(held)

    @property
    def held_handshakes(self) -> int:
        return len(self._held)

    async def pass_handshake(self) -> None:
        """Wait here, before the WebSocket upgrade is answered, while handshakes are held."""
        if not self._holding:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._held.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._held:
                self._held.remove(waiter)

    def reset(self) -> None:
        self._rest_remaining = 0
        self._refuse_until = 0.0
        self._silent_until = 0.0
        self._paths.clear()
        self.release_handshakes()


def malformed_frames(count: int, stream: str | None, combined: bool) -> list[bytes]:
    """``count`` bad frames of mixed kinds: not JSON, JSON missing fields, fields of wrong types."""
    symbol = (stream or "btcusdt@kline_1m").split("@", 1)[0].upper()
    kinds: list[bytes] = [
        b"this is not json {",
        orjson.dumps({"e": "kline", "E": 1, "s": symbol}),  # no "k"
        orjson.dumps(
            {
                "e": "kline",
                "E": "soon",
                "s": 42,
                "k": {
                    "t": "x",
                    "T": None,
                    "s": 42,
                    "i": 1,
                    "o": 1.5,
                    "c": [],
                    "h": {},
                    "l": True,
                    "v": "NaN?",
                    "n": "many",
                    "x": "yes",
                    "q": None,
                },
            }
        ),
        b"",
        orjson.dumps([1, 2, 3]),
        b'{"e":"kline","E":1,"s":"' + symbol.encode() + b'","k":{"t":1,"T":2,"s":"X","i":"1m","x":false',
    ]
    out: list[bytes] = []
    for i in range(count):
        frame = kinds[i % len(kinds)]
        if combined and i % 3 == 1 and stream is not None:
            frame = b'{"stream":"' + stream.encode() + b'","data":' + frame + b"}"
        elif combined and i % 3 == 2:
            frame = b'{"stream":' + b"17" + b',"dat":' + (frame or b"null") + b"}"
        out.append(frame)
    return out
