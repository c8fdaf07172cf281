"""No answer of the product's HTTP servers names a version in `Server`, also the 400s aiohttp's
HTTP parser gives before any application code runs: malformed HTTP over a raw socket against the
real webapp (`run_webapp`, with the bot's Telegram webhook mounted) and a service's own
`/metrics` port (`start_metrics_server`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.webhook import SECRET_HEADER
from core.settings import Settings
from db.metrics_server import start_metrics_server
from tests.fakes.telegram_api import FakeTelegram
from tests.raw_http import RawAnswer, exchange, request_bytes
from tests.test_supervisor import free_port
from tests.test_webhook import webhook_settings
from volspike.runtime import telegram_webhook
from webapp.app import run_webapp
from webapp.telegram_webhook import WEBHOOK_PATH

# What aiohttp's parser refuses before routing, each byte for byte as a scanner sends it.
MALFORMED = {
    "request line 20 kB long": b"GET /api/plans?" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "TLS hello on the HTTP port": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
    "header name with a space": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-Junk-%d: 1\r\n" % i for i in range(300))
    + b"\r\n",
    "bad Content-Length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "not HTTP at all": b"HELLO\x00\xff\r\n\r\n",
}


def assert_no_versions(answer: RawAnswer) -> None:
    server = answer.headers.get("server")
    assert server == "volspike", answer.headers
    assert "aiohttp" not in str(answer.headers).lower() and "python" not in str(answer.headers).lower()


@pytest.fixture
async def webapp_port(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[int]:
    port = free_port()
    async with FakeTelegram() as telegram:
        config = webhook_settings(settings, telegram).model_copy(
            update={"webapp_host": "127.0.0.1", "webapp_port": port}
        )
        listening = asyncio.Event()
        task = asyncio.create_task(
            run_webapp(config, db, redis, listening=listening.set, telegram_webhook=telegram_webhook(config))
        )
        try:
            await asyncio.wait_for(listening.wait(), 20)
            yield port
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_the_parsers_400_on_the_webapp_names_no_versions(webapp_port: int, name: str) -> None:
    answer = await exchange("127.0.0.1", webapp_port, MALFORMED[name])
    assert answer.status == 400, name
    assert_no_versions(answer)


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/health", {}),
        ("GET", "/nope", {}),
        ("POST", WEBHOOK_PATH, {SECRET_HEADER: b"wrong"}),  # the bot's webhook: 401
    ],
)
async def test_the_webapps_own_answers_name_no_versions(
    webapp_port: int, method: str, path: str, headers: dict[str, bytes]
) -> None:
    answer = await exchange("127.0.0.1", webapp_port, request_bytes(method, path, headers, b"{}"))
    assert answer.status in (200, 401, 404, 503)
    assert_no_versions(answer)


async def test_a_services_metrics_port_names_no_versions() -> None:
    port = free_port()
    runner = await start_metrics_server("127.0.0.1", port, service="test")
    try:
        assert_no_versions(await exchange("127.0.0.1", port, request_bytes("GET", "/metrics")))
        for name, data in MALFORMED.items():
            answer = await exchange("127.0.0.1", port, data)
            assert answer.status == 400, name
            assert_no_versions(answer)
    finally:
        await runner.cleanup()
