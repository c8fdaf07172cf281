"""An alert's context end to end: `run_ingest` against the simulator over real HTTP and
websockets, real PostgreSQL and Redis. Every figure is recomputed by hand from the simulator's
own market and the rows the test seeded; a hung or failing open-interest request neither delays
the alert nor turns into a zero."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis

from bot.alert_message import render_alert
from bot.i18n import create_i18n
from core.alert_context import AlertContext, context_lines
from core.clock import ms_from_utc, utc_from_ms
from core.number_format import format_change, format_usd
from core.redis_names import RedisNames
from core.settings import Settings
from core.tiers import Tier
from db.alerts import get_alert
from simulator.server import SimServer
from tests.bot_harness import compile_catalogs
from tests.test_ingest_service import HOUR_MS, armed, ingest, market, poll, settings_for, stream_entries

SYMBOL = "SOLUSDT"
DAY_AGO_PRICE = 185.0  # about where the sim's SOLUSDT trades with seed 21
ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts"
DAY = timedelta(days=1)
# no chart history; funding snapshots only at the next hour (after the test): the month is the seed
QUIET: dict[str, Any] = {"history": False, "mark_snapshot_interval": 3600.0}


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(market()) as server:
        yield server


@pytest.fixture
def ingest_settings(settings: Settings, sim: SimServer) -> Settings:
    return settings_for(settings, sim)


async def spike_row(pool: asyncpg.Pool) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT id, published_at FROM alerts WHERE symbol = $1 AND alert_type = 'SPIKE'", SYMBOL
    )


async def seed_month(pool: asyncpg.Pool, start_ms: int) -> tuple[list[float], list[float]]:
    """30 days of SOLUSDT before the sim's start: the same UTC hour at 1M, 2M, … 30M USDT, the
    22 hours before the previous one at 2M each, the hour a day before closing at DAY_AGO_PRICE,
    one funding snapshot a day at (d - 10) × 1e-5. Returns (same-hour volumes, funding rates)."""
    start = utc_from_ms(start_ms)
    hour = utc_from_ms(start_ms - start_ms % HOUR_MS)
    await pool.execute(
        "SELECT ensure_candle_partitions($1::date, $2::date)", (start - 31 * DAY).date(), start.date()
    )
    first = hour - DAY
    await pool.executemany(
        "INSERT INTO candles_1m VALUES ($1, $2, $3, $3, $3, $3, 1, $3, 1, 0, 0)",
        [(SYMBOL, first + timedelta(minutes=m), DAY_AGO_PRICE) for m in range(60)],
    )
    same_hour = [d * 1e6 for d in range(1, 31)]
    rows = [(hour - d * DAY, v) for d, v in zip(range(1, 31), same_hour, strict=True)]
    rows += [(hour - timedelta(hours=h), 2e6) for h in range(2, 24)]
    await pool.executemany(
        """INSERT INTO candles_1h VALUES ($1, $2, 1, 1, 1, 1, 1, $3, 1, 0, 0)
           ON CONFLICT (symbol, open_time) DO UPDATE SET quote_volume = EXCLUDED.quote_volume""",
        [(SYMBOL, at, v) for at, v in rows],
    )
    rates = [(d - 10) * 1e-5 for d in range(1, 31)]
    await pool.executemany(
        "INSERT INTO mark_snapshots (symbol, ts, mark_price, funding_rate) VALUES ($1, $2, 100, $3)",
        [
            (SYMBOL, start - d * DAY + timedelta(minutes=30), r)
            for d, r in zip(range(1, 31), rates, strict=True)
        ],
    )
    return same_hour, rates


async def test_a_spike_carries_the_context_of_the_moment_it_fired(
    ingest_settings: Settings, db: asyncpg.Pool, redis: Redis, names: RedisNames, sim: SimServer
) -> None:
    start_ms = sim.now_ms()
    hour_ms = start_ms - start_ms % HOUR_MS
    same_hour, rates = await seed_month(db, start_ms)
    async with ingest(ingest_settings, db, redis, **QUIET):
        await armed(redis, names)

        async def previous_hour_stored() -> bool:
            n = await db.fetchval(
                "SELECT count(*) FROM candles_1m WHERE symbol = $1 AND open_time >= $2 AND open_time < $3",
                SYMBOL,
                utc_from_ms(hour_ms - HOUR_MS),
                utc_from_ms(hour_ms),
            )
            entry = await redis.hget(names.market, SYMBOL)  # the funding rate is known (mark-price stream)
            return n == 60 and entry is not None and orjson.loads(entry).get("fundingRate") is not None

        await poll(previous_hour_stored, what="previous hour stored and funding known")
        sim.trigger_spike(SYMBOL, 6.0, min_quote_volume=ingest_settings.spike_min_quote_volume * 2)

        async def open_interest_stored() -> bool:
            row = await spike_row(db)
            if row is None:
                return False
            stored = await get_alert(db, row["id"])
            ctx = None if stored is None else stored.context
            return (  # the figure fetched after publishing (a warm one was read before the alert)
                stored is not None
                and ctx is not None
                and ctx.open_interest_change_1h is not None
                and ctx.open_interest_as_of is not None
                and ctx.open_interest_as_of > ms_from_utc(stored.detected_at)
            )

        await poll(open_interest_stored, what="SPIKE with its open interest fetched after publishing")
        row = await spike_row(db)
        assert row is not None
        alert = await get_alert(db, row["id"])
        assert alert is not None and alert.context is not None
        ctx = alert.context
        detected_ms = ms_from_utc(alert.detected_at)
        info = sim.market.get(SYMBOL)
        assert info is not None

        # taker-buy share and the hour's move: the sim's minutes of the hour as they stood then
        minutes = sim.market.klines(SYMBOL, "1m", detected_ms, start_ms=hour_ms, end_ms=detected_ms, limit=60)
        assert minutes[0].open_ms == hour_ms
        assert ctx.taker_buy_share == pytest.approx(
            sum(m.bq for m in minutes) / sum(m.q for m in minutes), rel=1e-4
        )
        assert ctx.price_change_1h == pytest.approx((alert.price / minutes[0].o - 1) * 100, rel=1e-6)
        # 24 h: the seeded minute a day before
        assert ctx.price_change_24h == pytest.approx((alert.price / DAY_AGO_PRICE - 1) * 100)
        # turnover: 22 seeded hours at 2M, the previous hour as stored from the stream, this hour
        previous = await db.fetchval(
            "SELECT quote_volume FROM candles_1h WHERE symbol = $1 AND open_time = $2",
            SYMBOL,
            utc_from_ms(hour_ms - HOUR_MS),
        )
        assert ctx.turnover_24h == pytest.approx(22 * 2e6 + previous + alert.current_volume)
        # rank among the seeded same hours
        above = sum(1 for v in same_hour if v >= alert.current_volume)
        assert ctx.rank_top_percent == pytest.approx(100 * (above + 1) / 31)
        # funding: the seeded rates and what ingest recorded from the mark-price stream
        recorded = [
            r["funding_rate"]
            for r in await db.fetch(
                "SELECT funding_rate FROM mark_snapshots WHERE symbol = $1 AND ts >= $2 AND ts < $3",
                SYMBOL,
                utc_from_ms(hour_ms),
                alert.detected_at,
            )
        ]
        every = rates + recorded
        assert alert.funding_rate is not None
        assert ctx.funding_percentile == pytest.approx(
            100 * sum(1 for r in every if r <= alert.funding_rate) / len(every)
        )
        # open interest: the sim's own curve, at the exchange time of the figure against the hour's
        # start; the after-publish request (the last before the poll succeeded) replaced any warm one
        assert ctx.open_interest_as_of is not None
        as_of = int(ctx.open_interest_as_of)
        asked = sim.request_log("/fapi/v1/openInterest")
        assert asked and {a["params"]["symbol"] for a in asked} == {SYMBOL}
        assert any(0 <= as_of - a["sim_time"] <= 1_000 for a in asked)
        hist = sim.request_log("/futures/data/openInterestHist")
        assert hist and all(
            h["params"] == {"symbol": SYMBOL, "period": "5m", "startTime": str(hour_ms), "limit": "1"}
            for h in hist
        )

        def oi_change(at_ms: int) -> float:
            assert info is not None
            return (sim.market.open_interest(info, at_ms) / sim.market.open_interest(info, hour_ms) - 1) * 100

        assert ctx.open_interest_change_1h == pytest.approx(oi_change(as_of), abs=1e-6)

        # the message as the bot sends it now (the docs' example is this one, from .artifacts/)
        compile_catalogs()
        i18n = create_i18n()
        for locale in ("en", "ru"):
            text = render_alert(
                alert, i18n=i18n, locale=locale, tier=Tier.ELITE, private=True, webapp_url=None
            ).text
            lines = text.split("\n")
            assert lines[3:5] == list(
                context_lines(ctx, alert.hour, lambda m, loc=locale: i18n.gettext(m, locale=loc))
            )
            assert (
                format_change(ctx.open_interest_change_1h) in lines[3]
                and format_usd(ctx.turnover_24h) in lines[4]
            )
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / f"alert-context-{locale}.txt").write_text(text + "\n")

        # the stream entry carries what was known when it was published: the hour jumped to 6x in
        # seconds, so a warm figure (ingest/open_interest.py) was there only if read in between
        entries = await stream_entries(redis, names, SYMBOL)
        published = AlertContext.from_json_dict(entries[0]["context"])
        if published.open_interest_change_1h is None:
            assert published.open_interest_as_of is None
        else:
            assert published.open_interest_as_of is not None
            warm_at = int(published.open_interest_as_of)
            assert detected_ms - 60_000 <= warm_at <= detected_ms
            assert published.open_interest_change_1h == pytest.approx(oi_change(warm_at), abs=1e-6)
        assert (
            published.taker_buy_share == ctx.taker_buy_share
            and published.rank_top_percent == ctx.rank_top_percent
        )


@pytest.mark.parametrize(
    ("path", "fault"),
    [
        ("/fapi/v1/openInterest", {"stall": 60.0}),  # hangs
        ("/futures/data/openInterestHist", {"status": 503}),  # refused, every retry too
    ],
)
async def test_the_alert_is_not_delayed_when_open_interest_hangs_or_fails(
    ingest_settings: Settings,
    db: asyncpg.Pool,
    redis: Redis,
    names: RedisNames,
    sim: SimServer,
    path: str,
    fault: dict[str, Any],
) -> None:
    sim.fault_path(path, **fault)
    async with ingest(ingest_settings, db, redis, open_interest_timeout=1.5, **QUIET):
        await armed(redis, names)
        sim.trigger_spike(SYMBOL, 6.0, min_quote_volume=ingest_settings.spike_min_quote_volume * 2)

        async def published() -> bool:
            row = await spike_row(db)
            return row is not None and row["published_at"] is not None

        await poll(published, what="SPIKE row published")
        if "stall" in fault:
            # published while the open-interest request is still hanging (it is logged once answered)
            assert sim.request_log(path) == []
        await asyncio.sleep(2.5)  # past the open-interest timeout
        row = await spike_row(db)
        assert row is not None
        alert = await get_alert(db, row["id"])
        assert alert is not None and alert.context is not None
        ctx = alert.context
        assert ctx.open_interest_change_1h is None
        assert ctx.taker_buy_share is not None and ctx.price_change_1h is not None
        # a fresh database: not yet 30 days (nor 24 h) of data, so those are unknown too
        assert (ctx.rank_top_percent, ctx.funding_percentile, ctx.turnover_24h, ctx.price_change_24h) == (
            None,
            None,
            None,
            None,
        )
        compile_catalogs()
        i18n = create_i18n()
        for locale, oi, rank in (("en", "OI n/a 1h", "rank n/a"), ("ru", "OI н/д за 1 ч", "ранг н/д")):
            text = render_alert(
                alert, i18n=i18n, locale=locale, tier=Tier.ELITE, private=True, webapp_url=None
            ).text
            assert oi in text and rank in text, text
        entries = await stream_entries(redis, names, SYMBOL)
        assert [e["alertType"] for e in entries] == ["SPIKE"]
        assert entries[0]["context"]["openInterestChange1h"] is None
