"""User commands end to end: the real Dispatcher long-polls the Telegram look-alike, with real
PostgreSQL and Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from core.settings import Settings
from tests.bot_harness import RunningBot, running_bot, seed_symbols

USER = 500_000_001


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    await seed_symbols(db)
    async with running_bot(settings, db, redis) as running:
        yield running


async def test_start_creates_the_user_in_their_telegram_language_and_offers_the_mini_app(app: RunningBot):
    [reply] = await app.send(USER, "/start", language_code="ru")
    assert "VolSpike" in reply.text
    button = reply.params["reply_markup"]["inline_keyboard"][0][0]
    assert button["web_app"]["url"] == "https://volspike.test/"
    row = await app.pool.fetchrow("SELECT language, tier FROM users WHERE id = $1", USER)
    assert row is not None and row["language"] == "ru" and row["tier"] == "free"
    assert await app.pool.fetchval("SELECT count(*) FROM user_settings WHERE user_id = $1", USER) == 1


async def test_help_lists_the_commands(app: RunningBot):
    [reply] = await app.send(USER, "/help")
    for command in (
        "/alerts",
        "/watch",
        "/unwatch",
        "/watchlist",
        "/settings",
        "/status",
        "/language",
        "/stop",
    ):
        assert command in reply.text


async def test_start_deep_link_opens_that_chart_in_the_mini_app(app: RunningBot):
    [reply] = await app.send(USER, "/start BTCUSDT")
    button = reply.params["reply_markup"]["inline_keyboard"][0][0]
    assert button["web_app"]["url"] == "https://volspike.test/chart/BTCUSDT"
    [reply] = await app.send(USER, "/start chart_eth")
    assert reply.params["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"].endswith("/chart/ETHUSDT")


async def test_start_deep_link_to_an_unknown_symbol_gets_the_welcome(app: RunningBot):
    [reply] = await app.send(USER, "/start NOPECOIN")
    assert "VolSpike" in reply.text
    assert reply.params["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"] == "https://volspike.test/"


async def test_start_deep_link_without_a_mini_app_answers_in_text(
    settings: Settings, db: asyncpg.Pool, redis: Redis
):
    await seed_symbols(db)
    async with running_bot(settings, db, redis, webapp_url=None) as app:
        [reply] = await app.send(USER, "/start BTCUSDT")
        assert "BTCUSDT" in reply.text and "reply_markup" not in reply.params
        [reply] = await app.send(USER, "/start")
        assert "reply_markup" not in reply.params


async def insert_alerts(pool: asyncpg.Pool, now: datetime, count: int, *, alert_type: str = "SPIKE") -> None:
    """`count` alerts, one a minute, the newest one minute before `now`."""
    rows = []
    for i in range(count):
        at = now - timedelta(minutes=1 + i)
        hour = at.replace(minute=0, second=0, microsecond=0)
        rows.append(
            (f"C{i}{alert_type[:1]}USDT", f"C{i}", alert_type, hour, at, 5e9, 1.5e9, 3.33, 97123.4, 0.0001)
        )
    await pool.executemany(
        "INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume,"
        " previous_volume, volume_ratio, price, funding_rate)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        rows,
    )


async def test_alerts_empty_history(app: RunningBot):
    [reply] = await app.send(USER, "/alerts")
    assert reply.text.startswith("No alerts yet")


async def test_free_alerts_show_ten_and_nothing_from_the_last_fifteen_minutes(app: RunningBot):
    await insert_alerts(app.pool, app.clock.now(), 40)
    [reply] = await app.send(USER, "/alerts")
    lines = reply.text.splitlines()
    assert lines[0] == "Last 10 alerts (times in UTC):"
    assert len([line for line in lines if "$5.00B · 3.33× · $97,123.40" in line]) == 10
    assert "<b>C14</b>" in lines[1]  # C0..C13 are younger than 15 minutes
    assert "15 minutes late" in lines[-1]


async def test_elite_alerts_show_a_hundred_in_real_time_with_updates(app: RunningBot):
    await app.add_user(USER, tier="elite")
    await insert_alerts(app.pool, app.clock.now(), 80)
    await insert_alerts(app.pool, app.clock.now(), 30, alert_type="FULL_UPDATE")
    replies = await app.send(USER, "/alerts", expect=2)  # 100 lines do not fit in one message
    text = "\n".join(r.text for r in replies)
    assert text.startswith("Last 100 alerts")
    assert text.count("$5.00B") == 100 and "<b>C0</b>" in text and "●" in text
    assert all(len(r.text) <= 4096 for r in replies)
    assert "late" not in text


async def test_pro_alerts_list_an_early_warning_as_a_projection(app: RunningBot):
    await app.add_user(USER, tier="pro")
    now = app.clock.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    await app.pool.execute(
        "INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume,"
        " previous_volume, volume_ratio, price, funding_rate, projected_volume)"
        " VALUES ('SOLUSDT', 'SOL', 'EARLY', $1, $2, 6.37e6, 6e6, 1.0617, 20, 0.0001, 18.05e6)",
        hour,
        now - timedelta(minutes=6),
    )
    [reply] = await app.send(USER, "/alerts")
    assert "⏳" in reply.text and "$6.37M · 1.06× · on pace for $18.05M (3.01×) · $20\n" in reply.text
    await app.add_user(USER + 1, tier="free")
    app.clock.set(now + timedelta(minutes=30))
    [free] = await app.send(USER + 1, "/alerts")
    assert "SOL" not in free.text  # the early warning is pro's and elite's


async def test_pro_alert_times_are_shown_in_their_time_zone(app: RunningBot):
    await app.add_user(USER, tier="pro")
    await app.pool.execute("UPDATE user_settings SET timezone = 'Asia/Tokyo' WHERE user_id = $1", USER)
    app.clock.set(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    await insert_alerts(app.pool, app.clock.now() - timedelta(minutes=5), 1)
    [reply] = await app.send(USER, "/alerts")
    assert "<code>03-01 20:54</code>" in reply.text and "Asia/Tokyo" in reply.text


async def test_status_of_a_free_user(app: RunningBot):
    [reply] = await app.send(USER, "/status")
    assert "Your plan: Free" in reply.text
    assert "15 minutes after detection" in reply.text
    assert "Watchlist: 0 of 5 symbols" in reply.text
    assert "Alert types: Volume spike\n" in reply.text


async def test_status_of_a_pro_user_shows_expiry_and_own_settings(app: RunningBot):
    expires = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    await app.add_user(USER, tier="pro", expires=expires)
    await app.pool.execute(
        "UPDATE user_settings SET spike_multiple = 5, quiet_start = '22:00', quiet_end = '07:00',"
        " timezone = 'Etc/GMT-3' WHERE user_id = $1",
        USER,
    )
    [reply] = await app.send(USER, "/status")
    assert "Your plan: Pro" in reply.text
    assert "Valid until 2030-01-02 06:04 UTC+3" in reply.text
    assert "Spike multiple: 5×" in reply.text
    assert "Quiet hours: 22:00–07:00" in reply.text


async def test_stop_pauses_alerts(app: RunningBot):
    [reply] = await app.send(USER, "/stop")
    assert "paused" in reply.text
    assert await app.pool.fetchval("SELECT paused FROM user_settings WHERE user_id = $1", USER) is True
    [reply] = await app.send(USER, "/status")
    assert "Alerts: paused" in reply.text


async def test_language_choice_is_saved_and_used_for_later_messages(app: RunningBot):
    [reply] = await app.send(USER, "/language")
    codes = [row[0]["callback_data"] for row in reply.params["reply_markup"]["inline_keyboard"]]
    assert codes == ["lang:en", "lang:ru", "lang:es", "lang:tr", "lang:uk"]
    answer = await app.press(USER, "lang:uk")
    assert answer.params["text"] != "Language set to English."
    assert await app.pool.fetchval("SELECT language FROM users WHERE id = $1", USER) == "uk"
    [reply] = await app.send(USER, "/watch", language_code="en")  # Telegram's language no longer matters
    assert reply.text != "Tell me which symbols to watch, e.g. /watch BTC ETH SOLUSDT"
    assert "/watch BTC ETH" in reply.text
    answer = await app.press(USER, "lang:xx")
    assert await app.pool.fetchval("SELECT language FROM users WHERE id = $1", USER) == "uk"


async def test_unknown_command_and_admin_commands_for_non_admins(app: RunningBot):
    [reply] = await app.send(USER, "/frobnicate")
    assert reply.text == "I don't know that command. Send /help to see what I can do."
    for command in ("/grant 1 pro 30", "/ban 1", "/stats", "/broadcast hello"):
        [reply] = await app.send(USER, command)
        assert reply.text == "I don't know that command. Send /help to see what I can do."
    assert await app.pool.fetchval("SELECT count(*) FROM admin_audit") == 0


async def test_banned_user_gets_a_notice_and_nothing_runs(app: RunningBot):
    await app.add_user(USER, banned=True)
    [reply] = await app.send(USER, "/watch BTC")
    assert reply.text == "Your access to VolSpike has been suspended."
    assert await app.pool.fetchval("SELECT count(*) FROM watchlists") == 0
    answer = await app.press(USER, "settings:pause")
    assert answer.params["text"] == "Your access to VolSpike has been suspended."
    assert await app.pool.fetchval("SELECT paused FROM user_settings WHERE user_id = $1", USER) is False


async def test_flooding_user_is_throttled_with_a_single_notice(app: RunningBot):
    await app.redis.delete(app.names.throttle(USER))
    for _ in range(12):
        app.tg.push_message(USER, "/help")
    await app.tg.wait_for(lambda _: len(app.replies(USER)) >= 6)
    await app.send(USER + 1, "/help")  # a later update of someone else: the flood is fully processed
    texts = [c.text for c in app.replies(USER)]
    assert len(texts) == 6
    assert texts.count("Slow down, please: too many requests. Try again in a few seconds.") == 1
    assert await app.redis.ttl(app.names.throttle(USER)) > 0


async def test_unexpected_error_is_answered_and_the_bot_keeps_running(
    app: RunningBot, caplog: pytest.LogCaptureFixture
):
    await app.add_user(USER)
    await app.pool.execute("UPDATE user_settings SET timezone = 'Mars/Olympus_Mons' WHERE user_id = $1", USER)
    await insert_alerts(app.pool, app.clock.now() - timedelta(hours=1), 1)
    with caplog.at_level(logging.ERROR, logger="bot.handlers.errors"):
        [reply] = await app.send(USER, "/alerts")
    assert reply.text == "Sorry, something went wrong. Please try again in a moment."
    assert any(r.message == "handler failed" and r.exc_info for r in caplog.records)
    [reply] = await app.send(USER, "/help")
    assert "/watch" in reply.text


async def test_writing_again_clears_the_blocked_flag(app: RunningBot):
    await app.add_user(USER)
    await app.pool.execute("UPDATE users SET blocked = true WHERE id = $1", USER)
    await app.send(USER, "/help")
    assert await app.pool.fetchval("SELECT blocked FROM users WHERE id = $1", USER) is False


async def test_language_choice_also_sets_the_command_menu_for_that_chat(app: RunningBot):
    await app.press(USER, "lang:tr")
    [call] = app.tg.calls_to("setMyCommands")
    assert call.params["scope"] == {"type": "chat", "chat_id": USER}
    assert call.params["commands"][0]["description"] == "Hoş geldiniz ve VolSpike ne yapar"
