"""What users send, through the real Dispatcher against the Telegram look-alike: throttling
before any database write, one HTML escaper, the one symbol rule (non-ASCII symbols included),
and error logs that carry ids, never what users typed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from core.settings import Settings
from tests.bot_harness import ADMIN_ID, RunningBot, running_bot, seed_symbols
from tests.fakes import telegram_api
from tests.telegram_html import html_problems

USER = 600_000_001
NEWCOMER = 600_000_002
WO = ("我踏马来了USDT", "我踏马来了", "USDT")  # a real Binance listing in Chinese characters


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    await seed_symbols(db)
    await db.execute(
        "INSERT INTO symbols (symbol, base_asset, quote_asset, contract_type, status) "
        "VALUES ($1, $2, $3, 'PERPETUAL', 'TRADING')",
        *WO,
    )
    async with running_bot(settings, db, redis) as running:
        yield running


async def test_a_throttled_update_writes_nothing_to_the_database(app: RunningBot):
    seconds, _micro = await app.redis.time()
    # An empty bucket, refilled only a while from now: the next update is over the budget.
    await app.redis.hset(app.names.throttle(NEWCOMER), mapping={"tokens": 0, "at": seconds + 60, "told": 0})
    [reply] = await app.send(NEWCOMER, "/start", keep_throttle=True, language_code="es")
    assert reply.text == "Más despacio, por favor: demasiadas solicitudes. Inténtalo en unos segundos."
    assert await app.pool.fetchval("SELECT count(*) FROM users WHERE id = $1", NEWCOMER) == 0
    await app.redis.delete(app.names.throttle(NEWCOMER))
    [reply] = await app.send(NEWCOMER, "/start")
    assert "VolSpike" in reply.text
    assert await app.pool.fetchval("SELECT count(*) FROM users WHERE id = $1", NEWCOMER) == 1


async def test_a_connected_chat_title_is_echoed_escaped(app: RunningBot, monkeypatch: pytest.MonkeyPatch):
    original = telegram_api._RESULTS["getChat"]

    def get_chat(fake: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {**original(fake, params), "title": "<b>Pump & Dump</b>"}  # type: ignore[arg-type]

    monkeypatch.setitem(telegram_api._RESULTS, "getChat", get_chat)
    [reply] = await app.send(ADMIN_ID, "/connect -1001234567 pro")
    assert reply.text == "&lt;b&gt;Pump &amp; Dump&lt;/b&gt; now receives Pro spike alerts in English."
    assert await app.pool.fetchval("SELECT title FROM chats") == "<b>Pump & Dump</b>"


async def test_a_typed_time_zone_is_echoed_escaped(app: RunningBot):
    await app.send(USER, "/settings")
    await app.press(USER, "settings:tz")
    [reply] = await app.send(USER, "<i>Mars & Co</i>")
    assert "<code>&lt;i&gt;Mars &amp; Co&lt;/i&gt;</code>" in reply.text


async def test_an_unknown_typed_symbol_is_echoed_escaped(app: RunningBot):
    [reply] = await app.send(USER, "/watch <b>&amp;")
    assert "<code>&lt;b&gt;&amp;amp</code>" in reply.text  # `;` separates symbols


async def test_a_non_ascii_symbol_is_watched_and_muted_like_any_other(app: RunningBot):
    [reply] = await app.send(USER, "/watch 我踏马来了 btc")
    assert reply.text == "Added: 我踏马来了USDT, BTCUSDT"
    answer = await app.press(USER, "mute:我踏马来了USDT")
    assert answer.params["text"] == "我踏马来了USDT muted for 24 hours. /mutes lists your mutes."
    muted = await app.pool.fetchval("SELECT symbol FROM mutes WHERE user_id = $1", USER)
    assert muted == "我踏马来了USDT"
    [reply] = await app.send(USER, "/unwatch 我踏马来了USDT")
    assert reply.text == "Removed: 我踏马来了USDT"


async def test_a_forged_mute_of_a_symbol_the_universe_lacks_has_expired(app: RunningBot):
    for data in ("mute:NOPEUSDT", "mute:", "mute:BTC USDT", "mute:" + "X" * 59):
        answer = await app.press(USER, data)
        assert answer.params["text"] == "That button has expired.", data
    assert await app.pool.fetchval("SELECT count(*) FROM mutes") == 0


async def test_too_many_symbols_at_once_get_a_clear_answer(app: RunningBot):
    [reply] = await app.send(USER, "/watch " + " ".join(f"C{i}" for i in range(101)), language_code="tr")
    assert reply.text == "Bir seferde en fazla 100 sembol gönderin."


async def test_a_long_answer_is_split_within_telegrams_limit(app: RunningBot):
    replies = await app.send(USER, "/watch " + " ".join(f"NOPE{i}XYZ" * 3 for i in range(100)), expect=2)
    assert all(len(r.text) <= 4096 for r in replies)


async def test_a_failed_handler_logs_ids_but_never_what_the_user_typed(
    app: RunningBot, caplog: pytest.LogCaptureFixture
):
    await app.send(USER, "/help")  # the user exists
    app.tg.fail("sendMessage", 400, "Bad Request: can't parse entities", chat_id=USER, count=1)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        [refused, reply] = await app.send(USER, "/watch BTC hunter2-secret", expect=2)
    assert "hunter2-secret" in refused.text  # the answer Telegram refused
    assert reply.text == "Sorry, something went wrong. Please try again in a moment."
    [failure] = [r for r in caplog.records if r.getMessage() == "handler failed"]
    assert failure.__dict__["user_id"] == USER and failure.__dict__["chat_id"] == USER
    assert isinstance(failure.__dict__["update_id"], int)
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("bot", "db", "volspike")]
    assert ours and not [r for r in ours if "hunter2" in repr(r.__dict__)]


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        ("/revoke ²", "Usage: /revoke &lt;user_id&gt;"),  # isdigit() is true, int() refuses it
        ("/ban 99999999999999999999", "Usage: /ban &lt;user_id&gt;"),  # beyond bigint
        ("/grant 5 pro ٣", "Usage: /grant &lt;user_id&gt; &lt;free|pro|elite&gt; [days]"),
        ("/disconnect -٣", "Usage: /disconnect &lt;chat_id&gt;"),
        (
            "/connect -99999999999999999999 pro",
            "Usage: /connect &lt;chat_id&gt; [free|pro|elite] [en|ru|es|tr|uk]",
        ),
    ],
)
async def test_odd_digits_and_huge_ids_get_the_usage_line(app: RunningBot, args: str, usage: str):
    [reply] = await app.send(ADMIN_ID, args)
    assert reply.text == usage and reply.params["parse_mode"] == "HTML"
    assert html_problems(reply.text) == []  # the real Telegram would refuse a bare <user_id>


async def test_a_button_no_handler_knows_is_answered_as_expired(app: RunningBot):
    for data in ("nothing:here", "bc:go:1", "bc:stop:2"):  # bc:* is for admins only
        answer = await app.press(USER, data)
        assert answer.params["text"] == "That button has expired.", data
