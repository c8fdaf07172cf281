"""The daily cap in the bot's `/settings`: a button row on the screen, its presets and "No cap",
for every plan (it only reduces messages), in English and Russian; a forged value is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from core.settings import Settings
from tests.bot_harness import RunningBot, running_bot, seed_symbols
from tests.test_bot_settings import buttons

USER = 500_000_021


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    await seed_symbols(db)
    async with running_bot(settings, db, redis) as running:
        yield running


async def _cap(app: RunningBot) -> int | None:
    value: int | None = await app.pool.fetchval(
        "SELECT daily_cap FROM user_settings WHERE user_id = $1", USER
    )
    return value


async def test_a_free_user_sets_and_removes_a_daily_cap_in_english(app: RunningBot):
    [reply] = await app.send(USER, "/settings")
    assert "Daily cap: off" in reply.text
    assert buttons(reply)["settings:menu:cap"] == "Daily cap: off"
    await app.press(USER, "settings:menu:cap")
    menu = app.tg.calls_to("editMessageText", USER)[-1]
    assert "At most this many spike alerts a day" in menu.text
    keys = buttons(menu)
    assert [keys[f"settings:cap:{n}"] for n in (5, 10, 20, 50)] == ["5", "10", "20", "50"]
    assert keys["settings:cap:off"] == "✅ No cap"
    answer = await app.press(USER, "settings:cap:10")
    assert answer.params["text"] == "Saved."
    assert await _cap(app) == 10
    screen = app.tg.calls_to("editMessageText", USER)[-1]
    assert "Daily cap: 10 spikes a day" in screen.text
    assert buttons(screen)["settings:menu:cap"] == "Daily cap: 10 spikes a day"
    await app.press(USER, "settings:menu:cap")
    assert buttons(app.tg.calls_to("editMessageText", USER)[-1])["settings:cap:10"] == "✅ 10"
    await app.press(USER, "settings:cap:off")
    assert await _cap(app) is None


@pytest.mark.parametrize("data", ["settings:cap:7", "settings:cap:0", "settings:cap:-5", "settings:cap:x"])
async def test_a_forged_cap_is_refused(app: RunningBot, data: str):
    await app.send(USER, "/settings")
    answer = await app.press(USER, data)
    assert answer.params["show_alert"] in (True, "true")
    assert answer.params["text"] == "That value is not available."
    assert await _cap(app) is None


async def test_the_daily_cap_in_russian(app: RunningBot):
    await app.add_user(USER, tier="pro", language="ru")
    [reply] = await app.send(USER, "/settings")
    assert "Дневной лимит: выкл." in reply.text
    await app.press(USER, "settings:menu:cap")
    menu = app.tg.calls_to("editMessageText", USER)[-1]
    assert menu.text.startswith("Не больше стольких оповещений о всплесках в день")
    assert buttons(menu)["settings:cap:off"] == "✅ Без лимита"
    await app.press(USER, "settings:cap:5")
    assert await _cap(app) == 5
    assert "Дневной лимит: 5 всплесков в день" in app.tg.calls_to("editMessageText", USER)[-1].text
