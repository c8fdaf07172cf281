"""Settings without traps, and the small ones (#20 items 4 and 7), as a user meets them through
the real dispatcher and the Telegram look-alike, in English and Russian: updates need SPIKE,
mutes can be lifted, prompts end and can be cancelled, locks point to /subscribe, time zones by
city name, an empty watchlist-only warns, old buttons say why, counted texts use plural forms,
commands in any case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from core.settings import Settings
from tests.bot_harness import RunningBot, running_bot, seed_symbols
from tests.test_bot_commands import insert_alerts

USER = 500_000_072
LANGUAGES = ["en", "ru"]

TEXT = {
    "en": {
        "updates_need_spike": "Updates follow a volume spike",
        "muted": "BTCUSDT muted for 24 hours. /mutes lists your mutes.",
        "unmuted": "BTCUSDT unmuted: its alerts come again.",
        "unmute_label": "🔇 Unmute BTC",
        "mute_label": "Mute BTC 24 h",
        "mutes_header": "Muted symbols (times in UTC):",
        "no_mutes": "You have no muted symbols.",
        "fallback": "I answer to commands. Send /help to see them.",
        "added": "Added: BTCUSDT",
        "cancelled": "Cancelled.",
        "city": "Moscow",
        "zone_set": "Time zone set to Europe/Moscow.",
        "part_of_pro": "This is part of Pro. Your plan: Free. See /subscribe.",
        "expired": "That button has expired. Here are your settings now.",
        "empty_warning": "Watchlist only is on, but your watchlist is empty",
        "watchlist_full": "A bigger plan holds more: /subscribe",
        "one_alert": "Last 1 alert (times in UTC):",
        "three_alerts": "Last 3 alerts (times in UTC):",
        "cancel_button": "Cancel",
        "list_emptied": "Your watchlist is empty, so no alert reaches you. Add symbols with /watch BTC ETH",
    },
    "ru": {
        "updates_need_spike": "Обновления идут за всплеском",
        "muted": "BTCUSDT: оповещения отключены на 24 часа. Список — /mutes.",
        "unmuted": "BTCUSDT: оповещения снова включены.",
        "unmute_label": "🔇 Включить BTC",
        "mute_label": "Заглушить BTC на 24 ч",
        "mutes_header": "Заглушённые символы (время — UTC):",
        "no_mutes": "У вас нет заглушённых символов.",
        "fallback": "Я отвечаю на команды. Отправьте /help, чтобы их увидеть.",
        "added": "Добавлено: BTCUSDT",
        "cancelled": "Отменено.",
        "city": "Москва",
        "zone_set": "Часовой пояс: Europe/Moscow.",
        "part_of_pro": "Это входит в Pro. Ваш тариф: Free. Тарифы — /subscribe.",
        "expired": "Эта кнопка устарела. Вот ваши настройки сейчас.",
        "empty_warning": "«Только список наблюдения» включено, но список пуст",
        "watchlist_full": "В старшем тарифе места больше: /subscribe",
        "one_alert": "1 последнее оповещение (время — UTC):",
        "three_alerts": "3 последних оповещения (время — UTC):",
        "cancel_button": "Отмена",
        "list_emptied": (
            "Список наблюдения пуст, поэтому оповещения не приходят. Добавьте символы: /watch BTC ETH"
        ),
    },
}


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    await seed_symbols(db)
    async with running_bot(settings, db, redis) as running:
        yield running


def shown(answer) -> str:  # type: ignore[no-untyped-def]
    return str(answer.params.get("text", ""))


async def alert_types(app: RunningBot) -> list[str]:
    return list(await app.pool.fetchval("SELECT alert_types FROM user_settings WHERE user_id = $1", USER))


@pytest.mark.parametrize("language", LANGUAGES)
async def test_elite_cannot_keep_updates_without_spike_and_is_told_why(app: RunningBot, language: str):
    await app.add_user(USER, tier="elite", language=language)
    answer = await app.press(USER, "settings:type:SPIKE")
    assert TEXT[language]["updates_need_spike"] in shown(answer)
    assert answer.params["show_alert"] in (True, "true")
    assert await alert_types(app) == ["SPIKE", "HALF_UPDATE", "FULL_UPDATE"]
    # With the updates off first, SPIKE alone stays and cannot go either (Pause stops everything).
    await app.press(USER, "settings:type:HALF_UPDATE")
    await app.press(USER, "settings:type:FULL_UPDATE")
    assert await alert_types(app) == ["SPIKE"]
    await app.press(USER, "settings:type:SPIKE")
    assert await alert_types(app) == ["SPIKE"]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_alert_mute_button_toggles_and_mutes_lists_and_lifts_them(app: RunningBot, language: str):
    await app.add_user(USER, tier="elite", language=language)
    t = TEXT[language]
    keyboard = {"inline_keyboard": [[{"text": t["mute_label"], "callback_data": "mute:BTCUSDT"}]]}
    answer = await app.press(USER, "mute:BTCUSDT", reply_markup=keyboard)
    assert shown(answer) == t["muted"]
    [edit] = app.tg.calls_to("editMessageReplyMarkup", USER)
    assert edit.params["reply_markup"]["inline_keyboard"][0][0]["text"] == t["unmute_label"]
    [listing] = await app.send(USER, "/mutes")
    assert listing.text.startswith(t["mutes_header"]) and "<b>BTCUSDT</b>" in listing.text
    unmute = listing.params["reply_markup"]["inline_keyboard"][0][0]
    assert unmute["callback_data"] == "unmute:BTCUSDT"

    answer = await app.press(USER, "mute:BTCUSDT", reply_markup=edit.params["reply_markup"])  # pressed again
    assert shown(answer) == t["unmuted"]
    edit = app.tg.calls_to("editMessageReplyMarkup", USER)[-1]
    assert edit.params["reply_markup"]["inline_keyboard"][0][0]["text"] == t["mute_label"]
    assert await app.pool.fetchval("SELECT count(*) FROM mutes WHERE until > $1", app.clock.now()) == 0

    await app.press(USER, "mute:ETHUSDT")
    answer = await app.press(USER, "unmute:ETHUSDT")  # the /mutes button
    assert shown(answer) == t["unmuted"].replace("BTCUSDT", "ETHUSDT")
    assert app.tg.calls_to("editMessageText", USER)[-1].text.startswith(t["no_mutes"])
    [listing] = await app.send(USER, "/mutes")
    assert listing.text.startswith(t["no_mutes"])


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_command_ends_the_time_zone_prompt_and_cancel_ends_it_too(app: RunningBot, language: str):
    await app.add_user(USER, tier="pro", language=language)
    t = TEXT[language]
    await app.press(USER, "settings:tz")
    prompt = app.tg.calls_to("sendMessage", USER)[-1]
    assert prompt.params["reply_markup"]["inline_keyboard"] == [
        [{"text": t["cancel_button"], "callback_data": "settings:cancel"}]
    ]
    [reply] = await app.send(USER, "/watch BTC")
    assert reply.text == t["added"]
    [reply] = await app.send(USER, "Europe/Berlin")  # no longer an answer to the old prompt
    assert reply.text == t["fallback"]

    await app.press(USER, "settings:quiet:custom")
    answer = await app.press(USER, "settings:cancel")
    assert shown(answer) == t["cancelled"]
    [reply] = await app.send(USER, "22:00-07:00")
    assert reply.text == t["fallback"]
    row = await app.pool.fetchrow("SELECT timezone, quiet_start FROM user_settings WHERE user_id = $1", USER)
    assert tuple(row) == ("UTC", None)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_time_zone_by_city_name_in_the_users_language(app: RunningBot, language: str):
    await app.add_user(USER, language=language)
    await app.press(USER, "settings:tz")
    replies = await app.send(USER, TEXT[language]["city"], expect=2)
    assert replies[0].text == TEXT[language]["zone_set"]
    tz = await app.pool.fetchval("SELECT timezone FROM user_settings WHERE user_id = $1", USER)
    assert tz == "Europe/Moscow"


@pytest.mark.parametrize("language", LANGUAGES)
async def test_locks_and_a_full_watchlist_point_to_subscribe(app: RunningBot, language: str):
    await app.add_user(USER, language=language)
    t = TEXT[language]
    [screen] = await app.send(USER, "/settings")
    assert "/subscribe" in screen.text and "/status" not in screen.text
    answer = await app.press(USER, "settings:locked")
    assert shown(answer) == t["part_of_pro"]
    [reply] = await app.send(USER, "/watch BTC ETH SOL XRP DOGE ADA")
    assert t["watchlist_full"] in reply.text


@pytest.mark.parametrize("language", LANGUAGES)
async def test_old_buttons_of_a_plan_the_user_now_has_say_they_expired(app: RunningBot, language: str):
    await app.add_user(USER, tier="pro", language=language)
    answer = await app.press(USER, "settings:locked")  # from the screen of when they were Free
    assert shown(answer) == TEXT[language]["expired"]
    assert "/settings" not in shown(answer) and "Pro." not in shown(answer)
    await app.pool.execute("UPDATE users SET tier = 'elite' WHERE id = $1", USER)
    answer = await app.press(USER, "settings:locked:elite")
    assert shown(answer) == TEXT[language]["expired"]
    answer = await app.press(USER, "settings:type:NOPE")  # forged
    assert shown(answer) != TEXT[language]["part_of_pro"] and "Pro" not in shown(answer)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_watchlist_only_with_an_empty_watchlist_warns(app: RunningBot, language: str):
    await app.add_user(USER, language=language)
    answer = await app.press(USER, "settings:wlonly")
    assert shown(answer).startswith(TEXT[language]["empty_warning"])
    assert answer.params["show_alert"] in (True, "true")
    screen = app.tg.calls_to("editMessageText", USER)[-1]
    assert "⚠️" in screen.text
    # Emptying the list later warns too.
    await app.send(USER, "/watch BTC")
    [reply] = await app.send(USER, "/unwatch BTC")
    assert reply.text.splitlines()[-1] == "⚠️ " + TEXT[language]["list_emptied"]
    [reply] = await app.send(USER, "/unwatch all")
    assert reply.text.splitlines()[-1] == "⚠️ " + TEXT[language]["list_emptied"]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_alert_counts_use_plural_forms_and_commands_any_case(app: RunningBot, language: str):
    await app.add_user(USER, tier="elite", language=language)
    await insert_alerts(app.pool, app.clock.now(), 1)
    [reply] = await app.send(USER, "/ALERTS")
    assert reply.text.splitlines()[0] == TEXT[language]["one_alert"]
    for i, symbol in enumerate(("ETHUSDT", "SOLUSDT"), start=2):
        at = app.clock.now() - timedelta(minutes=i)
        await app.pool.execute(
            "INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume,"
            " previous_volume, volume_ratio, price) VALUES ($1, $2, 'SPIKE', $3, $4, 5e9, 1.5e9, 3.33, 1)",
            symbol,
            symbol.removesuffix("USDT"),
            at.replace(minute=0, second=0, microsecond=0),
            at,
        )
    [reply] = await app.send(USER, "/Alerts")
    assert reply.text.splitlines()[0] == TEXT[language]["three_alerts"]
    [reply] = await app.send(USER, "/WATCH btc")
    assert reply.text == TEXT[language]["added"]
