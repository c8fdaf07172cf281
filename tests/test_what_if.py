"""What-if for own thresholds from stored candles and outcomes: counted by hand, through
GET /api/what-if and the bot's /settings (Telegram look-alike, en + ru)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from core.clock import ManualClock, hour_floor
from core.outcomes import Outcome
from core.settings import Settings
from db import alert_outcomes
from db.partitions import ensure_partitions
from db.what_if import estimate
from tests.bot_harness import RunningBot, compile_catalogs, running_bot, seed_symbols
from tests.miniapp_harness import add_alert
from webapp.app import create_app

NOW = datetime(2026, 3, 20, 12, 25, tzinfo=UTC)
USER = 500_000_051


async def hour(pool: asyncpg.Pool, symbol: str, start: datetime, quote_volume: float) -> None:
    """One stored minute holding the hour's whole quote volume (the roll-up makes the hour)."""
    await pool.execute(
        "INSERT INTO candles_1m VALUES ($1, $2, 1, 1, 1, 1, 1, $3, 1, 0.5, $4)",
        symbol,
        start,
        quote_volume,
        quote_volume / 2,
    )


async def spike_outcome(
    pool: asyncpg.Pool, symbol: str, at: datetime, previous: float, change_1h: float
) -> None:
    """The default SPIKE of the hour at `at` (the rule's denominator: `previous`) and its outcome."""
    alert_id = await add_alert(pool, symbol, at + timedelta(minutes=12))
    await pool.execute("UPDATE alerts SET previous_volume = $2 WHERE id = $1", alert_id, previous)
    outcome = Outcome(60, 0.5, 1, "price", (0.0, change_1h, None), (None, None, None), None, None, None, None)
    await alert_outcomes.store(pool, alert_id, outcome, at + timedelta(hours=2))


async def market(pool: asyncpg.Pool, now: datetime = NOW) -> None:
    """Three symbol-hours after quiet ones: A $1M → $5M (5×, +2 % after 1 h), B $2M → $7M
    (3.5×, -1 %), C $4M → $10M (2.5×, no SPIKE); plus the forming hour (8×), never counted,
    and a $50M hour whose previous hour is missing (no SPIKE). The oldest stored hour is 10 days
    before `now`'s."""
    first = hour_floor(now) - timedelta(days=10)
    await ensure_partitions(pool, first.date() - timedelta(days=1), now.date())
    h = first + timedelta(days=2)
    for symbol, before, after in (("AUSDT", 1e6, 5e6), ("BUSDT", 2e6, 7e6), ("CUSDT", 4e6, 10e6)):
        await hour(pool, symbol, h - timedelta(hours=1), before)
        await hour(pool, symbol, h, after)
    await hour(pool, "AUSDT", first, 1e6)  # the window's first stored hour
    await hour(pool, "DUSDT", h + timedelta(hours=5), 50e6)  # nothing stored the hour before
    await hour(pool, "AUSDT", hour_floor(now) - timedelta(hours=1), 1e6)
    await hour(pool, "AUSDT", hour_floor(now), 8e6)  # forming
    await spike_outcome(pool, "AUSDT", h, 1e6, 2.0)
    await spike_outcome(pool, "BUSDT", h, 2e6, -1.0)


@pytest.mark.parametrize(
    ("multiple", "volume", "alerts", "median", "known"),
    [
        (3.0, 3e6, 2, 0.5, 2),
        (4.0, 3e6, 1, 2.0, 1),
        (3.0, 6e6, 1, -1.0, 1),
        (20.0, 3e6, 0, None, 0),
    ],
)
async def test_what_if_counts_the_hours_that_would_have_fired(
    db: asyncpg.Pool, multiple: float, volume: float, alerts: int, median: float | None, known: int
) -> None:
    await market(db)
    found, days, per_day, median_1h, known_1h = await estimate(db, NOW, multiple, volume, (3.0, 3e6))
    assert (found, known_1h) == (alerts, known)
    assert days == pytest.approx(10.0)
    assert per_day == pytest.approx(alerts / 10)
    assert median_1h == (None if median is None else pytest.approx(median))


async def test_what_if_without_candles_says_so(db: asyncpg.Pool) -> None:
    found, days, per_day, median_1h, _known = await estimate(db, NOW, 3.0, 3e6, (3.0, 3e6))
    assert (found, days, per_day, median_1h) == (0, 0.0, None, None)


@pytest.fixture
async def client(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[TestClient]:
    compile_catalogs()  # the page and API texts in every language, from the .po files
    app = create_app(settings, pool=db, redis=redis, clock=ManualClock(NOW))
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_api_what_if_answers_for_the_thresholds_asked(client: TestClient, db: asyncpg.Pool) -> None:
    await market(db)
    body = await (await client.get("/api/what-if?multiple=4&minVolume=3000000")).json()
    assert body["alerts"] == 1 and body["alertsPerDay"] == pytest.approx(0.1) and body["days"] == 10
    assert body["median1h"] == pytest.approx(2.0) and body["known"] == 1
    assert body["text"] == (
        "With these thresholds you would have had 0.1 alerts a day over the last 10 days; "
        "median move after 1 h: +2.00%."
    )
    default = await (await client.get("/api/what-if")).json()  # the service's 3× and $3M
    assert default["multiple"] == 3.0 and default["minVolume"] == 3e6 and default["alerts"] == 2
    russian = await (await client.get("/api/what-if?multiple=20", headers={"Accept-Language": "ru"})).json()
    assert russian["alerts"] == 0 and "0.0" in russian["text"] and "нет" in russian["text"]
    for below in ("multiple=1", "multiple=2", "minVolume=1000000"):  # presets start at the default
        assert (await client.get(f"/api/what-if?{below}")).status == 400


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    await seed_symbols(db)
    async with running_bot(settings, db, redis, clock=ManualClock(NOW)) as running:
        yield running


@pytest.mark.parametrize(
    ("language", "line"),
    [
        ("en", "With these thresholds you would have had 0.1 alerts a day over the last 10 days; "
               "median move after 1 h: +2.00%."),
        ("ru", "С этими порогами у вас было бы 0.1 сигнала в день за последние 10 дней; "
               "медианное движение через 1 ч: +2.00%."),
    ],
)  # fmt: skip
async def test_settings_in_the_bot_show_the_what_if_of_the_users_thresholds(
    app: RunningBot, language: str, line: str
) -> None:
    await market(app.pool)
    await app.add_user(USER, tier="pro", language=language)
    await app.pool.execute("UPDATE user_settings SET spike_multiple = 4 WHERE user_id = $1", USER)
    [reply] = await app.send(USER, "/settings")
    assert f"<i>{line}</i>" in reply.text
