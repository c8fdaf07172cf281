"""Slow clients against the real server (`run_webapp` on a port): a connection that sends nothing,
trickles its header, or trickles its body is cut off after WEBAPP_HEADER_TIMEOUT /
WEBAPP_BODY_TIMEOUT (here a fraction of a second) instead of being held for minutes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web
from pydantic import SecretStr
from redis.asyncio import Redis

from core.settings import Settings
from db.http_server import ProductRunner
from tests.raw_http import exchange, request_bytes
from tests.test_supervisor import free_port
from webapp import keys
from webapp.app import run_webapp
from webapp.slow_clients import LINGER, read_body_in_time

HEADER_TIMEOUT = 0.6
BODY_TIMEOUT = 0.6
KEY = "ingest-key-0123456789"


@pytest.fixture
async def port(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[int]:
    port = free_port()
    config = settings.model_copy(
        update={
            "webapp_host": "127.0.0.1",
            "webapp_port": port,
            "webapp_header_timeout": HEADER_TIMEOUT,
            "webapp_body_timeout": BODY_TIMEOUT,
            "alert_ingest_api_key": SecretStr(KEY),
        }
    )
    listening = asyncio.Event()
    task = asyncio.create_task(run_webapp(config, db, redis, listening=listening.set))
    await asyncio.wait_for(listening.wait(), 20)
    yield port
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing; fails when it is still open after `seconds`."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = asyncio.get_running_loop().time()
    assert await _closed_within(reader, HEADER_TIMEOUT + 5) == b""
    assert asyncio.get_running_loop().time() - started >= HEADER_TIMEOUT * 0.9
    writer.close()


async def test_a_trickled_header_is_cut_off(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = request_bytes("GET", "/api/plans")[:-2]  # never ends its header block

    async def trickle() -> None:
        for byte in head:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    try:
        assert await _closed_within(reader, HEADER_TIMEOUT + 5) == b""
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        writer.close()


BOUNDARY = b"volspike-boundary"
MULTIPART = (
    b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
    b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\n" + b"x" * 300 + b"\r\n--" + BOUNDARY + b"--\r\n"
)
# (Content-Type, framing headers, the body trickled a byte at a time)
TRICKLED = {
    "json": (b"application/json", b"Content-Length: 400", b" " * 400),
    "multipart": (
        b"multipart/form-data; boundary=" + BOUNDARY,
        b"Content-Length: " + str(len(MULTIPART)).encode(),
        MULTIPART,
    ),
    "chunked": (b"application/json", b"Transfer-Encoding: chunked", b"1\r\n \r\n" * 400 + b"0\r\n\r\n"),
}


@pytest.mark.parametrize("kind", sorted(TRICKLED))
async def test_a_trickled_body_gets_408_and_is_closed(port: int, kind: str) -> None:
    content_type, framing, body = TRICKLED[kind]
    head = request_bytes("POST", "/api/volume-alerts/ingest", {"X-API-Key": KEY.encode()})
    head = head.replace(b"\r\n\r\n", b"\r\nContent-Type: " + content_type + b"\r\n" + framing + b"\r\n\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)

    async def trickle() -> None:
        # A byte every 50 ms for most of the timeout, then a stall: the bytes sent are all read
        # before the 408, so the server's close is not a reset that could lose the answer.
        for byte in body[: int(BODY_TIMEOUT * 0.7 / 0.05)]:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    started = asyncio.get_running_loop().time()
    try:
        status = await asyncio.wait_for(reader.readline(), BODY_TIMEOUT + 5)
        answer = status + await _closed_within(reader, LINGER + 5)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"request_timeout"' in answer
    assert asyncio.get_running_loop().time() - started < BODY_TIMEOUT + LINGER + 3


async def test_a_prompt_multipart_body_reaches_its_handler_whole(settings: Settings) -> None:
    """The body is read (within the timeout) before the handler runs; a handler that parses
    multipart still gets every field."""

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        return web.json_response({"note": form["note"], "file": len(upload.file.read())})

    app = web.Application(middlewares=[read_body_in_time])
    app[keys.SETTINGS] = settings.model_copy(update={"webapp_body_timeout": BODY_TIMEOUT})
    app.router.add_post("/upload", upload)
    runner = ProductRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        data = request_bytes(
            "POST", "/upload", {"Content-Type": b"multipart/form-data; boundary=" + BOUNDARY}, MULTIPART
        )
        answer = await exchange("127.0.0.1", port, data)
    finally:
        await runner.cleanup()
    assert answer.status == 200 and answer.json() == {"note": "hello", "file": 300}


async def test_a_prompt_client_is_served_as_before(port: int) -> None:
    answer = await exchange("127.0.0.1", port, request_bytes("GET", "/api/plans"))
    assert answer.status == 200
