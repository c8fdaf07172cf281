"""/ws fan-out: one webapp process holding 10,000 WebSockets, and one alert reaching all of them.

    .venv/bin/python -m bench.ws_fanout [--sockets 10000] [--alerts 5] [--client-procs 4]

The real webapp serves in a child process (its open-files limit raised to the hard limit).
`--client-procs` other processes open `--sockets` WebSockets between them, each signed in as
an elite user with initData in the handshake and subscribed to alerts. The clients are bare
asyncio protocols speaking RFC 6455 (no task per socket) spread over several processes, so
that reading 10,000 frames is not the load generator's bottleneck. Then
`--alerts` times, an alert is PUBLISHed on the live alert channel exactly as ingest's
publisher does; the table gives the time from the PUBLISH until the first and the last socket
had it (CLOCK_MONOTONIC, shared by the processes; target: last < 1 s), how many got it, and
the webapp process's memory (VmRSS) before and with the sockets open.
Environment: VOLSPIKE_BENCH_PG, VOLSPIKE_BENCH_REDIS (see bench/webapp_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis

from bench.detection_latency import percentile
from bench.ingest_memory import proc_status
from bench.webapp_server import REDIS_URL, bench_database, bench_webapp, raise_open_files
from core.alerts import Alert, AlertType
from core.redis_names import RedisNames
from tests.miniapp_harness import BOT_TOKEN, init_data

USER_ID = 4242


def alert(n: int) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        symbol="BTCUSDT",
        asset="BTC",
        alert_type=AlertType.SPIKE,
        hour=now.replace(minute=0, second=0, microsecond=0),
        detected_at=now,
        current_volume=5e9,
        previous_volume=1.5e9,
        ratio=3.33,
        price=97123.4,
        funding_rate=0.0001,
        id=n + 1,
    )


def _client_process(port: int, sockets: int, alerts: int, pipe: Connection) -> None:
    raise_open_files()
    asyncio.run(_clients(port, sockets, alerts, pipe))


class _Socket(asyncio.Protocol):
    """One WebSocket client on a bare asyncio protocol: no task and no aiohttp reader per socket,
    so that 10,000 of them reading a frame costs the load generator as little as possible. It
    speaks RFC 6455 as a client: the upgrade request, masked frames out, pongs to pings."""

    def __init__(
        self, handshake: bytes, opened: asyncio.Future[None], on_alert: Callable[[int], None]
    ) -> None:
        self._handshake = handshake
        self._opened = opened
        self._on_alert = on_alert
        self._buffer = b""
        self._upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._handshake)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            self._opened.set_exception(ConnectionError(f"closed during the handshake: {exc!r}"))

    def send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            head, sep, rest = self._buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self._opened.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                return
            self._upgraded, self._buffer = True, rest
            self.send(0x1, SUBSCRIBE)
            self._opened.set_result(None)
        while len(self._buffer) >= 2:
            opcode, size, at = self._buffer[0] & 0x0F, self._buffer[1] & 0x7F, 2
            if size == 126:
                size, at = int.from_bytes(self._buffer[2:4]), 4
            elif size == 127:
                size, at = int.from_bytes(self._buffer[2:10]), 10
            if len(self._buffer) < at + size:
                return
            payload, self._buffer = self._buffer[at : at + size], self._buffer[at + size :]
            if opcode == 0x9:  # ping: aiohttp's heartbeat closes a socket that does not answer
                self.send(0xA, payload)
            elif opcode == 0x1 and b'"type":"alert"' in payload:
                self._on_alert(orjson.loads(payload)["alert"]["id"] - 1)


SUBSCRIBE = b'{"op":"subscribe","channel":"alerts"}'


async def _clients(port: int, sockets: int, alerts: int, pipe: Connection) -> None:
    """Open `sockets` sockets, say "ready", then report (first, last, count) of each alert."""
    loop = asyncio.get_running_loop()
    received: list[list[float]] = [[] for _ in range(alerts)]
    everyone = [asyncio.Event() for _ in range(alerts)]
    signed = init_data(USER_ID, auth_date=datetime.now(UTC))
    handshake = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: tma {signed}\r\n\r\n"
    ).encode()

    def on_alert(n: int) -> None:
        received[n].append(time.perf_counter())
        if len(received[n]) == sockets:
            everyone[n].set()

    gate = asyncio.Semaphore(100)
    transports: list[asyncio.Transport] = []

    async def open_one() -> None:
        async with gate:
            opened: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda: _Socket(handshake, opened, on_alert), "127.0.0.1", port
            )
            transports.append(transport)
            await opened

    try:
        await asyncio.gather(*(open_one() for _ in range(sockets)))
        pipe.send("ready")
        for n in range(alerts):
            with contextlib.suppress(TimeoutError):  # reported as fewer sockets
                await asyncio.wait_for(everyone[n].wait(), 30)
            times = received[n]
            pipe.send((min(times, default=0.0), max(times, default=0.0), len(times)))
    finally:
        for transport in transports:
            transport.close()


async def _recv(pipe: Connection) -> object:
    return await asyncio.to_thread(pipe.recv)


@dataclass
class Measured:
    sockets: int
    client_procs: int
    connect_s: float
    before_kib: int  # webapp VmRSS before the sockets
    held_kib: int  # ... with them open
    alerts: list[tuple[float, float, int]]  # per alert: s to the first socket, to the last, reached


async def _measure(sockets: int, alerts: int, client_procs: int) -> Measured:
    limit = raise_open_files()
    if limit < sockets + 100:
        raise RuntimeError(f"open-files limit {limit} is below {sockets + 100}; lower the socket count")
    async with bench_database() as database_url:
        conn = await asyncpg.connect(database_url)
        await conn.execute("INSERT INTO users (id, first_name, tier) VALUES ($1, 'Bench', 'elite')", USER_ID)
        await conn.close()
        async with bench_webapp(database_url, bot_token=BOT_TOKEN) as app:
            before = proc_status(app.pid)["VmRSS"]
            port = int(app.url.rsplit(":", 1)[1])
            context = multiprocessing.get_context("spawn")
            share = [sockets // client_procs] * client_procs
            share[0] += sockets - sum(share)
            pipes, procs = [], []
            began = time.perf_counter()
            for count in share:
                ours, theirs = context.Pipe()
                proc = context.Process(target=_client_process, args=(port, count, alerts, theirs))
                proc.start()
                pipes.append(ours)
                procs.append(proc)
            try:
                for pipe in pipes:
                    assert await asyncio.wait_for(_recv(pipe), 900) == "ready"
                connect_s = time.perf_counter() - began
                await asyncio.sleep(2)  # the last subscribe commands reach the hub
                held = proc_status(app.pid)["VmRSS"]
                names = RedisNames(app.settings.redis_prefix)
                redis = Redis.from_url(REDIS_URL)
                rows = []
                try:
                    for n in range(alerts):
                        sent = time.perf_counter()
                        await redis.publish(names.alerts_channel, alert(n).to_json())
                        parts = [await _recv(pipe) for pipe in pipes]
                        first = min(p[0] for p in parts)  # type: ignore[index]
                        last = max(p[1] for p in parts)  # type: ignore[index]
                        rows.append((first - sent, last - sent, sum(p[2] for p in parts)))  # type: ignore[index]
                        await asyncio.sleep(1)
                finally:
                    await redis.aclose()
            finally:
                for proc in procs:
                    proc.join(60)
                    if proc.is_alive():
                        proc.terminate()
    return Measured(sockets, client_procs, connect_s, before, held, rows)


async def measure(sockets: int = 10_000, alerts: int = 5, client_procs: int = 4) -> list[dict[str, object]]:
    """Rows (name, figure, target) for this module's table: time to the last socket, and memory."""
    m = await _measure(sockets, alerts, client_procs)
    rows, connect_s, before, held = m.alerts, m.connect_s, m.before_kib, m.held_kib
    lasts = sorted(last for _, last, _ in rows)
    reached = min(count for _, _, count in rows)
    result: list[dict[str, object]] = [
        {
            "name": f"ws: {sockets} sockets opened ({client_procs} client processes)",
            "figure": f"{connect_s:.1f} s",
            "target": "",
        },
    ]
    for n, (first, last, count) in enumerate(rows, 1):
        verdict = "ok" if last < 1 and count == sockets else "MISSED"
        result.append(
            {
                "name": f"ws: alert {n}, first / last socket ({count} reached)",
                "figure": f"{first * 1000:.0f} / {last * 1000:.0f} ms {verdict}",
                "target": "last < 1000 ms",
            }
        )
    result += [
        {
            "name": "ws: alert to the last socket, p50 / max",
            "figure": f"{percentile(lasts, 0.5) * 1000:.0f} / {lasts[-1] * 1000:.0f} ms",
            "target": "< 1000 ms",
        },
        {
            "name": "ws: sockets that got every alert",
            "figure": f"{reached} of {sockets}",
            "target": f"{sockets}",
        },
        {
            "name": "ws: webapp VmRSS idle / with the sockets",
            "figure": f"{before / 1024:.0f} / {held / 1024:.0f} MiB "
            f"({(held - before) / sockets:.1f} KiB per socket)",
            "target": "",
        },
    ]
    return result


def print_table(rows: list[dict[str, object]]) -> None:
    width = max(len(str(row["name"])) for row in rows)
    figure = max(len(str(row["figure"])) for row in rows)
    print(f"| {'figure':<{width}} | {'value':<{figure}} | target")
    print(f"|{'-' * (width + 2)}|{'-' * (figure + 2)}|{'-' * 16}")
    for row in rows:
        print(f"| {row['name']!s:<{width}} | {row['figure']!s:<{figure}} | {row['target']}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=5)
    parser.add_argument("--client-procs", type=int, default=4)
    args = parser.parse_args()
    try:
        rows = await measure(args.sockets, args.alerts, args.client_procs)
    except RuntimeError as exc:
        print(exc)
        return 1
    print_table(rows)
    return 0


async def rows(sockets: int = 10_000, alerts: int = 5, client_procs: int = 4) -> Any:
    """`volspike bench`'s rows (a bench.rows.Section): sockets held, PUBLISH → last socket."""
    from bench.rows import Row, Section

    m = await _measure(sockets, alerts, client_procs)
    lasts = [last * 1000 for _, last, _ in m.alerts]
    last = max(lasts, default=float("nan"))
    every = min((count for _, _, count in m.alerts), default=0)
    return Section(
        [
            Row(
                "/ws connections held",
                every,
                "sockets",
                f">= {sockets}",
                f"webapp VmRSS {m.held_kib / 1024:.0f} MiB ({m.before_kib / 1024:.0f} idle)",
                every >= sockets,
            ),
            Row(
                f"/ws PUBLISH → last of {sockets} sockets has the alert (max of {alerts})",
                last,
                "ms",
                "< 1000",
                f"p50 {percentile(lasts, 0.5):.1f} ms",
                last < 1000,
            ),
        ],
        {"/ws: PUBLISH → last socket": lasts},
    )


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
