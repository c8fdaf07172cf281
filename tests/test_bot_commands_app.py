"""`run_bot` as the service runs it (polling and webhook registration), and the webhook secret."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.app import run_bot
from core.clock import ManualClock
from core.redis_names import RedisNames
from core.settings import Settings
from tests.bot_harness import compile_catalogs
from tests.delivery_harness import add_alert, add_user, poll_until, publish
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fault_servers import free_port

USER = 500_000_004


def bot_settings(settings: Settings, tg: FakeTelegram, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={"bot_token": SecretStr(TOKEN), "telegram_api_url": tg.url, **overrides}
    )


@contextlib.asynccontextmanager
async def service(
    config: Settings, pool: asyncpg.Pool, redis: Redis, clock: ManualClock | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    compile_catalogs()
    task = asyncio.create_task(run_bot(config, pool, redis, clock=clock or ManualClock()))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for_key(redis: Redis, key: str) -> dict[str, Any]:
    """Poll Redis (bounded: 10 s) until the key exists."""
    for _ in range(200):
        raw = await redis.get(key)
        if raw is not None:
            data: dict[str, Any] = orjson.loads(raw)
            return data
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} was never written")


async def test_run_bot_sets_the_menu_polls_and_reports_health_until_cancelled(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames
):
    async with FakeTelegram() as tg:
        async with service(bot_settings(settings, tg), db, redis) as task:
            await tg.wait_for_call("deleteWebhook")  # the last step before polling
            commands = {
                c.params.get("language_code"): c.params["commands"] for c in tg.calls_to("setMyCommands")
            }
            assert set(commands) == {None, "en", "ru", "es", "tr", "uk"}
            assert [c["command"] for c in commands[None]][:3] == ["start", "alerts", "watch"]
            assert commands["ru"][0]["description"] == "Приветствие и что умеет VolSpike"
            button = tg.calls_to("setChatMenuButton")[0].params["menu_button"]
            assert button["type"] == "web_app" and button["web_app"]["url"] == "https://volspike.test/"
            assert tg.calls_to("deleteWebhook") and not tg.calls_to("setWebhook")

            tg.push_message(USER, "/help", language_code="es")
            [reply] = await tg.wait_for_call("sendMessage", USER)
            assert reply.text.startswith("<b>Comandos</b>")

            health = await wait_for_key(redis, names.bot_health)
            assert (
                health["ok"] is True and health["mode"] == "polling" and health["bot"] == "volspike_test_bot"
            )
            assert 0 < await redis.ttl(names.bot_health) <= 30
        assert task.cancelled()
        assert await redis.get(names.bot_health) is None


async def test_run_bot_in_webhook_mode_registers_the_webhook_and_does_not_poll(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames
):
    async with FakeTelegram() as tg:
        config = bot_settings(
            settings,
            tg,
            telegram_webhook_url="https://volspike.test/webhooks/telegram",
            telegram_webhook_secret=SecretStr("s3cret-token_1"),
            webapp_url=None,
        )
        async with service(config, db, redis):
            [call] = await tg.wait_for_call("setWebhook")
            assert call.params["url"] == "https://volspike.test/webhooks/telegram"
            assert call.params["secret_token"] == "s3cret-token_1"
            assert "message" in call.params["allowed_updates"]
            health = await wait_for_key(redis, names.bot_health)
            assert health["mode"] == "webhook"
            button = tg.calls_to("setChatMenuButton")[0].params["menu_button"]
            assert button["type"] == "default"
        assert not tg.calls_to("deleteWebhook")


def test_webhook_secret_is_the_setting_or_derived_from_the_token(settings: Settings):
    from bot.webhook import webhook_secret

    assert webhook_secret(settings.model_copy(update={"bot_token": None})) is None
    explicit = settings.model_copy(
        update={"bot_token": SecretStr(TOKEN), "telegram_webhook_secret": SecretStr("x")}
    )
    assert webhook_secret(explicit) == "x"
    derived = webhook_secret(settings.model_copy(update={"bot_token": SecretStr(TOKEN)}))
    assert derived is not None and len(derived) == 64 and derived.isalnum() and TOKEN not in derived
    other = webhook_secret(settings.model_copy(update={"bot_token": SecretStr(TOKEN + "x")}))
    assert other != derived


def _sent_total(text: str) -> float:
    found = re.search(r'^volspike_deliveries_total\{outcome="sent"\} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_run_bot_serves_the_delivery_metrics_on_its_own_port(
    settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames
):
    port = free_port()
    clock = ManualClock()
    await add_user(db, USER)
    async with FakeTelegram() as tg, aiohttp.ClientSession() as http:
        async with service(bot_settings(settings, tg, bot_metrics_port=port), db, redis, clock):
            await tg.wait_for_call("deleteWebhook")
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 200 and resp.content_type == "text/plain"
                before = await resp.text()
            assert "volspike_delivery_queue_depth" in before and "volspike_sender_stopped" in before

            await poll_until(lambda: _group_exists(redis, names))
            await publish(redis, names, await add_alert(db, clock.now()))
            await tg.wait_for_call("sendMessage", USER)
            await poll_until(lambda: _scraped_sent(http, port, _sent_total(before) + 1))
        with pytest.raises(aiohttp.ClientConnectionError):  # the port closes with the bot
            await http.get(f"http://127.0.0.1:{port}/metrics")


async def _scraped_sent(http: aiohttp.ClientSession, port: int, at_least: float) -> bool:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        return _sent_total(await resp.text()) >= at_least


async def _group_exists(redis: Redis, names: RedisNames) -> bool:
    if not await redis.exists(names.alerts_stream):
        return False
    groups = await redis.xinfo_groups(names.alerts_stream)
    return any(g["name"] == names.delivery_group.encode() for g in groups)
