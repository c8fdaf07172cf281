"""Bad bytes from the attack run, sent byte for byte through the real HTTP server: each gets a
4xx JSON answer (401 for the auth ones) and nothing is logged as an error with a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.webhook import SECRET_HEADER
from core.settings import Settings
from db.http_server import ProductRunner
from tests.bot_harness import compile_catalogs
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.miniapp_harness import add_symbols, init_data
from tests.raw_http import exchange, request_bytes
from tests.test_webhook import SECRET, webhook_settings
from volspike.runtime import create_webapp as create_app
from webapp.telegram_webhook import WEBHOOK_PATH

API_KEY = "ingest-key-0123456789"
METRICS_TOKEN = "metrics-token-0123456789"


@dataclass
class Served:
    host: str
    port: int

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def send(self, method: str, path: str, headers: dict[str, bytes] | None = None, body: bytes = b""):
        return await exchange(self.host, self.port, request_bytes(method, path, headers, body))


@pytest.fixture
async def served(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[Served]:
    compile_catalogs()
    await add_symbols(db, ["BTCUSDT"])
    async with FakeTelegram() as telegram:
        config = webhook_settings(settings, telegram).model_copy(
            update={"alert_ingest_api_key": SecretStr(API_KEY), "metrics_token": SecretStr(METRICS_TOKEN)}
        )
        runner = ProductRunner(create_app(config, pool=db, redis=redis), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            yield Served("127.0.0.1", runner.addresses[0][1])
        finally:
            await runner.cleanup()


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [(r.name, r.getMessage()) for r in bad]


def _non_ascii_hash() -> str:
    """Signed-looking initData whose `hash` is not ASCII (`ü` × 64, percent-encoded as a client sends it)."""
    good = init_data(1001, token=TOKEN)
    return good.rsplit("hash=", 1)[0] + "hash=" + quote("ü" * 64)


async def test_non_ascii_init_data_hash_is_401_json(served: Served, no_tracebacks: None) -> None:
    answer = await served.send("GET", "/api/me", {"Authorization": f"tma {_non_ascii_hash()}".encode()})
    assert answer.status == 401 and answer.json()["error"] == "unauthorized"


async def test_non_ascii_init_data_hash_on_ws_gets_an_error_frame_and_the_socket_stays(
    served: Served, no_tracebacks: None
) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{served.base}/ws") as ws:
        await ws.send_json({"op": "auth", "initData": _non_ascii_hash()})
        assert await ws.receive_json(timeout=5) == {"type": "error", "error": "unauthorized"}
        await ws.send_json({"op": "subscribe", "channel": "nope"})
        assert await ws.receive_json(timeout=5) == {"type": "error", "error": "unknown_channel"}


@pytest.mark.parametrize("secret", ["sécret-token", "s3cret-token_1\xff"])
async def test_non_ascii_webhook_secret_is_401_json(served: Served, secret: str, no_tracebacks: None) -> None:
    raw = secret.encode("latin-1") if "\xff" in secret else secret.encode()
    answer = await served.send("POST", WEBHOOK_PATH, {SECRET_HEADER: raw}, b'{"update_id": 1}')
    assert answer.status == 401 and answer.json()["error"] == "unauthorized"


@pytest.mark.parametrize("value", [b"Bearer \xff\xfe", "Bearer m\u00e9trics".encode()])
async def test_non_ascii_metrics_bearer_is_refused_as_json(
    served: Served, value: bytes, no_tracebacks: None
) -> None:
    answer = await served.send("GET", "/metrics", {"Authorization": value, "X-Forwarded-For": b"203.0.113.9"})
    assert answer.status in (401, 403) and answer.json()["error"] in ("unauthorized", "forbidden")


@pytest.mark.parametrize("value", [b"\xff" * 20, "ingest-kéy".encode()])
async def test_non_ascii_api_key_is_401_json(served: Served, value: bytes, no_tracebacks: None) -> None:
    answer = await served.send(
        "POST", "/api/volume-alerts/ingest", {"X-API-Key": value, "Content-Type": b"application/json"}, b"{}"
    )
    assert answer.status == 401 and answer.json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    "path",
    [
        "/api/candles?symbol=BTCUSDT&interval=1h&to=99999999999999999",
        "/api/candles?symbol=BTCUSDT&interval=1h&from=0&to=253402300800",
        "/udf/history?symbol=BTCUSDT&resolution=60&from=0&to=99999999999999999",
    ],
)
async def test_a_huge_to_is_a_400_json(served: Served, path: str, no_tracebacks: None) -> None:
    answer = await served.send("GET", path)
    assert answer.status == 400
    assert answer.json().get("error") == "bad_input" or answer.json().get("s") == "error"


async def test_json_2000_deep_with_the_right_webhook_secret_is_400_json(
    served: Served, no_tracebacks: None
) -> None:
    body = ("[" * 2000 + "]" * 2000).encode()
    answer = await served.send("POST", WEBHOOK_PATH, {SECRET_HEADER: SECRET.encode()}, body)
    assert answer.status == 400 and answer.json()["error"] == "bad_input"
    deep_object = json.dumps({"update_id": 1, "message": {}})[:-2] + '{"a":' * 2000 + "1" + "}" * 2002
    answer = await served.send("POST", WEBHOOK_PATH, {SECRET_HEADER: SECRET.encode()}, deep_object.encode())
    assert answer.status == 400 and answer.json()["error"] == "bad_input"


@pytest.fixture
def warnings_only(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    caplog.set_level(logging.DEBUG)
    warned: list[logging.LogRecord] = []
    yield warned
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [(r.name, r.getMessage()) for r in errors]


async def test_an_over_long_request_line_is_a_400_logged_as_a_warning(
    served: Served, caplog: pytest.LogCaptureFixture, warnings_only: list[logging.LogRecord]
) -> None:
    answer = await served.send("GET", "/api/plans?" + "a" * 20_000)
    assert answer.status == 400
    assert any(r.levelno == logging.WARNING and "refused" in r.getMessage() for r in caplog.records)


async def test_too_many_headers_is_a_400_logged_as_a_warning(
    served: Served, caplog: pytest.LogCaptureFixture, warnings_only: list[logging.LogRecord]
) -> None:
    headers = {f"X-Junk-{i}": b"1" for i in range(300)}
    answer = await served.send("GET", "/api/plans", headers)
    assert answer.status == 400
    assert any(r.levelno == logging.WARNING and "refused" in r.getMessage() for r in caplog.records)


async def test_a_client_leaving_mid_body_is_logged_as_a_warning(
    served: Served, caplog: pytest.LogCaptureFixture, warnings_only: list[logging.LogRecord]
) -> None:
    head = request_bytes("POST", "/api/volume-alerts/ingest", {"X-API-Key": API_KEY.encode()})
    head = head.replace(b"\r\n\r\n", b"\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n")
    _reader, writer = await asyncio.open_connection(served.host, served.port)
    writer.write(head + b'{"symbol": "BTC')
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await writer.wait_closed()
    for _ in range(100):
        if any("left" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    assert any("left" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records), [
        (r.name, r.levelname, r.getMessage()) for r in caplog.records
    ]
