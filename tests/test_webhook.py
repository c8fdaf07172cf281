"""Webhook mode through the webapp: aiogram's request handler with the secret check, answered at
once and handled in the background, a redelivered update handled once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
from aiogram import Bot, Dispatcher, Router
from aiogram.types import Message
from aiohttp import web
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.app import build_bot
from bot.webhook import SECRET_HEADER, UpdateLedger, mount_webhook
from core.redis_names import RedisNames
from core.settings import Settings
from tests.bot_harness import compile_catalogs
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from volspike.runtime import create_webapp as create_app
from webapp.telegram_webhook import WEBHOOK_PATH

USER = 500_000_014
SECRET = "s3cret-token_1"


def update(text: str, update_id: int = 1) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 5,
            "date": 1_700_000_000,
            "chat": {"id": USER, "type": "private", "first_name": "Trader"},
            "from": {"id": USER, "is_bot": False, "first_name": "Trader", "language_code": "tr"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{WEBHOOK_PATH}"
    finally:
        await runner.cleanup()


def webhook_settings(settings: Settings, tg: FakeTelegram) -> Settings:
    return settings.model_copy(
        update={
            "bot_token": SecretStr(TOKEN),
            "telegram_api_url": tg.url,
            "telegram_webhook_url": "https://volspike.test/webhooks/telegram",
            "telegram_webhook_secret": SecretStr(SECRET),
        }
    )


async def test_webhook_refuses_a_wrong_secret_and_a_body_that_is_not_an_update(
    settings: Settings, db: asyncpg.Pool, redis: Redis
):
    compile_catalogs()
    async with FakeTelegram() as tg:
        app = create_app(webhook_settings(settings, tg), pool=db, redis=redis)
        async with serving(app) as url, aiohttp.ClientSession() as http:
            for headers in ({}, {SECRET_HEADER: "wrong"}):
                async with http.post(url, json=update("/help"), headers=headers) as response:
                    assert response.status == 401
                    assert (await response.json())["error"] == "unauthorized"
            good = {SECRET_HEADER: SECRET}
            for body in (b"{not json", b"[1, 2]", b'{"update_id": "x"}'):
                async with http.post(url, data=body, headers=good) as response:
                    assert response.status == 400 and (await response.json())["error"] == "bad_input"
            async with http.post(url, json=update("/help"), headers=good) as response:
                assert response.status == 200
            [reply] = await tg.wait_for_call("sendMessage", USER)
            assert reply.text.startswith("<b>Komutlar</b>")
        assert len(tg.calls_to("sendMessage")) == 1  # nothing from the refused requests


async def test_a_redelivered_update_is_handled_once(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames
):
    compile_catalogs()
    async with FakeTelegram() as tg:
        app = create_app(webhook_settings(settings, tg), pool=db, redis=redis)
        async with serving(app) as url, aiohttp.ClientSession() as http:
            good = {SECRET_HEADER: SECRET}
            for _ in range(3):  # Telegram did not see the first answer and sent it again
                async with http.post(url, json=update("/help", update_id=77), headers=good) as response:
                    assert response.status == 200
            async with http.post(url, json=update("/help", update_id=78), headers=good) as response:
                assert response.status == 200
            await tg.wait_for_call("sendMessage", USER, count=2)
        assert len(tg.calls_to("sendMessage", USER)) == 2
        ttl = await redis.ttl(names.telegram_update(77))
        assert 0 < ttl <= 24 * 3600


async def test_an_update_is_answered_before_its_handler_finishes_and_drained_at_shutdown(
    settings: Settings, redis: Redis, names: RedisNames
):
    release = asyncio.Event()
    handled: list[int] = []
    router = Router()

    @router.message()
    async def slow(message: Message) -> None:
        await release.wait()
        handled.append(message.message_id)

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    async with FakeTelegram() as tg:
        bot: Bot = build_bot(
            settings.model_copy(update={"bot_token": SecretStr(TOKEN), "telegram_api_url": tg.url})
        )
        app = web.Application()
        mount_webhook(
            app, dispatcher, bot, path=WEBHOOK_PATH, secret=SECRET, ledger=UpdateLedger(redis, names)
        )
        async with serving(app) as url, aiohttp.ClientSession() as http:
            async with http.post(
                url, json=update("/help", update_id=90), headers={SECRET_HEADER: SECRET}
            ) as r:
                assert r.status == 200
            assert handled == []  # answered while the handler is still waiting
            # Released only once the shutdown has begun: leaving `serving` waits for the handler.
            asyncio.get_running_loop().call_later(0.1, release.set)
        assert handled == [5]
