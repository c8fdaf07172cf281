"""Webhook bodies fuzzed through the real HTTP route: `POST /webhooks/telegram` with the right secret
answers every body with 200 (an update, handled in the background) or a JSON 400, never a 5xx, and
the bot still answers a good update afterwards."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from redis.asyncio import Redis

from bot.webhook import SECRET_HEADER
from core.settings import Settings
from tests.bot_harness import compile_catalogs
from tests.fakes.telegram_api import FakeTelegram
from tests.test_bot_fuzz import FUZZ, json_values, update_bodies
from tests.test_webhook import SECRET, USER, serving, update, webhook_settings
from volspike.runtime import create_webapp as create_app


@dataclass
class Served:
    url: str
    http: aiohttp.ClientSession
    telegram: FakeTelegram


@pytest.fixture
async def served(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[Served]:
    compile_catalogs()
    async with FakeTelegram() as telegram:
        app = create_app(webhook_settings(settings, telegram), pool=db, redis=redis)
        async with serving(app) as url, aiohttp.ClientSession() as http:
            yield Served(url, http, telegram)


def _dumps(value: object) -> bytes:
    """JSON as any client may send it: the stdlib also writes integers beyond 64 bits (orjson
    refuses them), so oversized ids reach the server too."""
    return json.dumps(value).encode()


bodies = st.one_of(
    update_bodies().map(_dumps),
    json_values.map(_dumps),
    st.binary(max_size=200),
)


@FUZZ
@given(body=bodies)
@example(body=_dumps({"update_id": 2**70, "message": {"message_id": -(2**70), "text": "/start"}}))
async def test_any_webhook_body_is_answered_200_or_a_json_400_never_a_5xx(
    served: Served, body: bytes
) -> None:
    async with served.http.post(served.url, data=body, headers={SECRET_HEADER: SECRET}) as response:
        assert response.status in (200, 400), (response.status, body[:200])
        if response.status == 400:
            answer: dict[str, Any] = await response.json()
            assert answer["error"] == "bad_input"


async def test_the_bot_still_answers_through_the_webhook_after_the_fuzzing(served: Served) -> None:
    async with served.http.post(
        served.url, json=update("/help", update_id=987_654), headers={SECRET_HEADER: SECRET}
    ) as response:
        assert response.status == 200
    [reply] = await served.telegram.wait_for_call("sendMessage", USER)
    assert reply.text.startswith("<b>Komutlar</b>")
