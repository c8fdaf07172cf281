"""`/watch`, `/unwatch`, `/watchlist`: symbol spelling, suggestions, tier limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from core.settings import Settings
from tests.bot_harness import RunningBot, running_bot, seed_symbols

USER = 500_000_002


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    await seed_symbols(db)
    async with running_bot(settings, db, redis) as running:
        yield running


async def watched(app: RunningBot, user_id: int = USER) -> list[str]:
    rows = await app.pool.fetch("SELECT symbol FROM watchlists WHERE user_id = $1 ORDER BY symbol", user_id)
    return [r["symbol"] for r in rows]


async def test_watch_accepts_assets_lowercase_and_full_symbols(app: RunningBot):
    [reply] = await app.send(USER, "/watch BTC eth SOLUSDT $xrp, BTCUSDC")
    assert "Added: BTCUSDT, ETHUSDT, SOLUSDT, XRPUSDT, BTCUSDC" in reply.text
    assert await watched(app) == ["BTCUSDC", "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]


async def test_watch_twice_says_already_watched_and_stores_once(app: RunningBot):
    await app.send(USER, "/watch BTC")
    [reply] = await app.send(USER, "/watch btcusdt")
    assert "Already watched: BTCUSDT" in reply.text
    assert await watched(app) == ["BTCUSDT"]


async def test_watch_unknown_symbol_is_answered_with_suggestions(app: RunningBot):
    [reply] = await app.send(USER, "/watch ETHH PEPE ZZZZZZ BTC")
    assert "Unknown symbol <code>ETHH</code>. Did you mean: ETHUSDT" in reply.text
    assert "Unknown symbol <code>PEPE</code>. Did you mean: 1000PEPEUSDT" in reply.text
    assert "Unknown symbol <code>ZZZZZZ</code>." in reply.text
    assert "Added: BTCUSDT" in reply.text
    assert await watched(app) == ["BTCUSDT"]


async def test_watch_without_symbols_explains_usage(app: RunningBot):
    [reply] = await app.send(USER, "/watch")
    assert "/watch BTC ETH" in reply.text
    assert await watched(app) == []


async def test_free_watchlist_holds_five_symbols(app: RunningBot):
    [reply] = await app.send(USER, "/watch BTC ETH SOL XRP DOGE ADA BNB")
    assert "Added: BTCUSDT, ETHUSDT, SOLUSDT, XRPUSDT, DOGEUSDT" in reply.text
    assert "watchlist is full (5 symbols on Free): ADAUSDT, BNBUSDT" in reply.text
    assert len(await watched(app)) == 5
    [reply] = await app.send(USER, "/watch BNB")
    assert "full" in reply.text and len(await watched(app)) == 5


async def test_elite_watchlist_is_unlimited(app: RunningBot):
    await app.add_user(USER, tier="elite")
    [reply] = await app.send(USER, "/watch BTC ETH SOL XRP DOGE ADA BNB 1000PEPE BTCUSDC")
    assert "full" not in reply.text
    assert len(await watched(app)) == 9
    [reply] = await app.send(USER, "/watchlist")
    assert reply.text.startswith("Your watchlist (9):")


async def test_expired_pro_counts_as_free_for_the_limit(app: RunningBot):
    from datetime import timedelta

    await app.add_user(USER, tier="pro", expires=app.clock.now() - timedelta(days=1))
    [reply] = await app.send(USER, "/watch BTC ETH SOL XRP DOGE ADA")
    assert "(5 symbols on Free): ADAUSDT" in reply.text


async def test_unwatch_removes_and_reports_what_was_not_there(app: RunningBot):
    await app.send(USER, "/watch BTC ETH")
    [reply] = await app.send(USER, "/unwatch btc SOL QQQQQ")
    assert "Removed: BTCUSDT" in reply.text
    assert "Not in your watchlist: SOLUSDT" in reply.text
    assert "Unknown symbol <code>QQQQQ</code>" in reply.text
    assert await watched(app) == ["ETHUSDT"]


async def test_unwatch_all_and_without_arguments(app: RunningBot):
    [reply] = await app.send(USER, "/unwatch")
    assert "/unwatch BTC" in reply.text
    await app.send(USER, "/watch BTC ETH")
    [reply] = await app.send(USER, "/unwatch all")
    assert reply.text == "Your watchlist is now empty."
    assert await watched(app) == []


async def test_unwatch_a_delisted_symbol_still_works(app: RunningBot):
    await app.send(USER, "/watch SOL")
    await app.pool.execute("UPDATE symbols SET active = false WHERE symbol = 'SOLUSDT'")
    [reply] = await app.send(USER, "/unwatch SOL")
    assert "Removed: SOLUSDT" in reply.text


async def test_watchlist_shows_symbols_and_the_tier_size(app: RunningBot):
    [reply] = await app.send(USER, "/watchlist")
    assert "empty" in reply.text
    await app.send(USER, "/watch ETH BTC")
    [reply] = await app.send(USER, "/watchlist")
    assert reply.text == "Your watchlist (2 of 5):\nBTCUSDT, ETHUSDT"
