"""`/settings` through callback queries and typed input, tier locks, and the pure parsing core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import time

import asyncpg
import pytest
from redis.asyncio import Redis

from core.settings import Settings
from core.symbols import resolve, suggest
from core.timezones import display_timezone, in_quiet_hours, parse_quiet_hours, parse_timezone
from tests.bot_harness import RunningBot, running_bot, seed_symbols

USER = 500_000_003


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    await seed_symbols(db)
    async with running_bot(settings, db, redis) as running:
        yield running


def buttons(call) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        b["callback_data"]: b["text"] for row in call.params["reply_markup"]["inline_keyboard"] for b in row
    }


async def prefs(app: RunningBot) -> asyncpg.Record:
    row = await app.pool.fetchrow("SELECT * FROM user_settings WHERE user_id = $1", USER)
    assert row is not None
    return row


async def test_free_user_sees_locked_settings_and_what_they_unlock(app: RunningBot):
    [reply] = await app.send(USER, "/settings")
    keys = buttons(reply)
    assert keys["settings:locked"].startswith("🔒")
    assert "settings:menu:mult" not in keys
    assert {"settings:wlonly", "settings:pause", "settings:tz"} <= keys.keys()
    assert "Pro unlocks your own spike multiple" in reply.text
    answer = await app.press(USER, "settings:locked")
    assert answer.params["show_alert"] in (True, "true") and "Pro" in answer.params["text"]


async def test_free_user_cannot_forge_a_locked_change(app: RunningBot):
    await app.send(USER, "/settings")
    for data in (
        "settings:mult:5",
        "settings:vol:10000000",
        "settings:quiet:2200-0700",
        "settings:type:SPIKE",
    ):
        answer = await app.press(USER, data)
        assert answer.params["show_alert"] in (True, "true")
    row = await prefs(app)
    assert row["spike_multiple"] is None and row["min_quote_volume"] is None and row["quiet_start"] is None
    assert row["alert_types"] == ["SPIKE", "HALF_UPDATE", "FULL_UPDATE"]


async def test_pro_user_sets_multiple_and_minimum_volume_with_presets(app: RunningBot):
    await app.add_user(USER, tier="pro")
    await app.press(USER, "settings:menu:mult")
    edit = app.tg.calls_to("editMessageText", USER)[-1]
    assert {"settings:mult:3", "settings:mult:5", "settings:mult:10", "settings:back"} <= buttons(edit).keys()
    answer = await app.press(USER, "settings:mult:5")
    assert answer.params["text"] == "Saved."
    assert "Spike multiple: 5×" in app.tg.calls_to("editMessageText", USER)[-1].text
    await app.press(USER, "settings:vol:25000000")
    row = await prefs(app)
    assert row["spike_multiple"] == 5 and row["min_quote_volume"] == 25_000_000
    assert "Minimum hourly volume: $25.00M" in app.tg.calls_to("editMessageText", USER)[-1].text
    answer = await app.press(USER, "settings:mult:1.5")  # below the service's own rule: not offered
    assert answer.params["show_alert"] in (True, "true")
    await app.press(USER, "settings:mult:3")  # back to the default is stored as "default"
    assert (await prefs(app))["spike_multiple"] is None


async def test_alert_types_updates_are_elite_only_and_one_type_must_stay(app: RunningBot):
    await app.add_user(USER, tier="pro")
    await app.press(USER, "settings:menu:types")
    keys = buttons(app.tg.calls_to("editMessageText", USER)[-1])
    assert "settings:locked:elite" in keys and "settings:type:SPIKE" in keys
    answer = await app.press(USER, "settings:type:HALF_UPDATE")
    assert "Elite" in answer.params["text"]
    answer = await app.press(USER, "settings:type:SPIKE")
    assert "at least one" in answer.params["text"]
    await app.pool.execute("UPDATE users SET tier = 'elite' WHERE id = $1", USER)
    await app.press(USER, "settings:type:HALF_UPDATE")
    assert (await prefs(app))["alert_types"] == ["SPIKE", "FULL_UPDATE"]
    answer = await app.press(USER, "settings:type:SPIKE")  # updates follow a SPIKE: refused, with why
    assert "Updates follow a volume spike" in answer.params["text"]
    assert (await prefs(app))["alert_types"] == ["SPIKE", "FULL_UPDATE"]


async def test_watchlist_only_and_pause_toggle_for_every_tier(app: RunningBot):
    await app.send(USER, "/settings")
    await app.press(USER, "settings:wlonly")
    await app.press(USER, "settings:pause")
    row = await prefs(app)
    assert row["watchlist_only"] is True and row["paused"] is True
    edit = app.tg.calls_to("editMessageText", USER)[-1]
    assert buttons(edit)["settings:pause"] == "Resume alerts"
    answer = await app.press(USER, "settings:pause")
    assert answer.params["text"] == "Alerts resumed."
    assert (await prefs(app))["paused"] is False


async def test_quiet_hours_preset_custom_and_off(app: RunningBot):
    await app.add_user(USER, tier="pro")
    await app.press(USER, "settings:quiet:2200-0700")
    row = await prefs(app)
    assert (row["quiet_start"], row["quiet_end"]) == (time(22), time(7))
    await app.press(USER, "settings:quiet:custom")
    await app.tg.wait_for_call("sendMessage", USER)
    [reply] = await app.send(USER, "late")
    assert "HH:MM-HH:MM" in reply.text
    replies = await app.send(USER, "22:30-06:15", expect=2)
    assert replies[0].text == "Quiet hours set to 22:30–06:15."
    row = await prefs(app)
    assert (row["quiet_start"], row["quiet_end"]) == (time(22, 30), time(6, 15))
    await app.press(USER, "settings:quiet:off")
    assert (await prefs(app))["quiet_start"] is None


async def test_time_zone_is_typed_as_a_name_or_an_offset(app: RunningBot):
    await app.send(USER, "/settings")
    await app.press(USER, "settings:tz")
    [reply] = await app.send(USER, "Mars/Base")
    assert "I don't know the time zone <code>Mars/Base</code>" in reply.text
    replies = await app.send(USER, "utc+3", expect=2)
    assert replies[0].text == "Time zone set to UTC+3."
    assert (await prefs(app))["timezone"] == "Etc/GMT-3"
    [reply] = await app.send(USER, "hello")  # the prompt is over: plain text is not a time zone any more
    assert "/help" in reply.text
    await app.press(USER, "settings:tz")
    await app.send(USER, "europe/istanbul", expect=2)
    assert (await prefs(app))["timezone"] == "Europe/Istanbul"


async def test_settings_button_under_an_alert_opens_a_new_settings_message(app: RunningBot):
    await app.send(USER, "/start")
    before = len(app.tg.calls_to("sendMessage", USER))
    await app.press(USER, "settings:open", message_id=77)
    sent = app.tg.calls_to("sendMessage", USER)
    assert len(sent) == before + 1 and sent[-1].text.startswith("<b>Settings</b>")
    assert not app.tg.calls_to("editMessageText", USER)


# -- the pure core ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "zone"),
    [
        ("UTC", "UTC"),
        ("utc+3", "Etc/GMT-3"),
        ("GMT-5", "Etc/GMT+5"),
        ("+03:00", "Etc/GMT-3"),
        ("UTC+0", "UTC"),
        ("America/New_York", "America/New_York"),
        ("asia/kolkata", "Asia/Kolkata"),
        ("UTC+5:30", None),
        ("UTC+15", None),
        ("Mars/Base", None),
        ("", None),
    ],
)
def test_parse_timezone(typed: str, zone: str | None):
    assert parse_timezone(typed) == zone


def test_offset_zones_display_with_the_usual_sign():
    assert display_timezone("Etc/GMT-3") == "UTC+3"
    assert display_timezone("Etc/GMT+5") == "UTC-5"
    assert display_timezone("Europe/Kyiv") == "Europe/Kyiv"


def test_quiet_hours_across_midnight():
    start, end = time(22), time(7)
    assert in_quiet_hours(time(23, 30), start, end)
    assert in_quiet_hours(time(0, 0), start, end)
    assert in_quiet_hours(time(6, 59), start, end)
    assert not in_quiet_hours(time(7, 0), start, end)
    assert not in_quiet_hours(time(21, 59), start, end)
    assert in_quiet_hours(time(13), time(12), time(14)) and not in_quiet_hours(time(14), time(12), time(14))


@pytest.mark.parametrize("typed", ["22:00-22:00", "25:00-07:00", "22-7x", "abc"])
def test_bad_quiet_hours_are_refused(typed: str):
    assert parse_quiet_hours(typed) is None


def test_quiet_hours_accept_short_forms():
    assert parse_quiet_hours("22-7") == (time(22), time(7))
    assert parse_quiet_hours("22:30 – 06:00") == (time(22, 30), time(6))


UNIVERSE = {
    "BTCUSDT": "BTC",
    "BTCUSDC": "BTC",
    "ETHUSDT": "ETH",
    "ETHFIUSDT": "ETHFI",
    "1000PEPEUSDT": "1000PEPE",
}


def test_symbol_spellings_resolve_to_one_symbol():
    result = resolve(["btc", "BTCUSDT", "$eth", "BTCUSDC", "nope"], UNIVERSE)
    assert result.symbols == ["BTCUSDT", "ETHUSDT", "BTCUSDC"]
    assert list(result.unknown) == ["nope"]


def test_suggestions_by_prefix_and_similarity():
    assert suggest("PEPE", UNIVERSE) == ["1000PEPEUSDT"]
    assert suggest("ETHH", UNIVERSE)[0] == "ETHUSDT"
    assert "BTCUSDT" in suggest("BTCUSD", UNIVERSE)
    assert suggest("QQQQQQ", UNIVERSE) == []


async def test_settings_button_for_someone_without_a_private_chat_explains(app: RunningBot):
    app.tg.blocked_chats.add(USER)
    answer = await app.press(USER, "settings:open")
    assert answer.params["text"] == "Open a private chat with me first: /start"


async def test_expired_pro_sees_the_defaults_that_apply_not_the_stored_values(app: RunningBot):
    from datetime import timedelta

    await app.add_user(USER, tier="pro", expires=app.clock.now() - timedelta(hours=1))
    await app.pool.execute(
        "UPDATE user_settings SET spike_multiple = 7, quiet_start = '22:00', quiet_end = '07:00'"
        " WHERE user_id = $1",
        USER,
    )
    [reply] = await app.send(USER, "/settings")
    assert "Spike multiple: 3×" in reply.text and "Quiet hours: off" in reply.text
    assert "Alert types: Volume spike\n" in reply.text
    assert "settings:locked" in buttons(reply)
