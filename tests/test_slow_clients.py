"""Slow clients against the real server (`run_webapp` on a port): a connection that sends nothing,
trickles its header, or trickles its body is cut off after WEBAPP_HEADER_TIMEOUT /
WEBAPP_BODY_TIMEOUT (here a fraction of a second) instead of being held for minutes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from core.settings import Settings
from tests.raw_http import exchange, request_bytes
from tests.test_supervisor import free_port
from webapp.app import run_webapp
from webapp.slow_clients import LINGER

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


async def test_a_trickled_body_gets_408_and_is_closed(port: int) -> None:
    head = request_bytes("POST", "/api/volume-alerts/ingest", {"X-API-Key": KEY.encode()})
    head = head.replace(b"\r\n\r\n", b"\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)

    async def trickle() -> None:
        for _ in range(400):
            writer.write(b" ")
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
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


async def test_a_prompt_client_is_served_as_before(port: int) -> None:
    answer = await exchange("127.0.0.1", port, request_bytes("GET", "/api/plans"))
    assert answer.status == 200
