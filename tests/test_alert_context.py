"""An alert's context: its figures from seeded candles and funding snapshots (real PostgreSQL),
its words in the bot message in every language, and its form in the API (real HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.alert_message import render_alert
from bot.i18n import create_i18n
from core.alert_context import AlertContext, context_lines, near_rule, warm_open_interest_change
from core.alerts import Alert, AlertType
from core.clock import ManualClock, ms_from_utc
from core.i18n import SUPPORTED_LOCALES
from core.tiers import Tier
from db import alert_context as db_context
from db.alerts import get_alert, insert_alert
from ingest.context import HourFlows, stored_context
from ingest.open_interest import current_figure, hour_start_figure
from ingest.parsers import Kline
from tests.bot_harness import compile_catalogs
from tests.miniapp_harness import BOT_TOKEN, NOW, add_symbols, init_data, tma
from webapp.app import create_app
from webapp.keys import I18N

HOUR = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
DETECTED = HOUR + timedelta(minutes=7, seconds=30)
SYMBOL = "SOLUSDT"

# a context whose every figure is known, and the two lines it makes
FULL = AlertContext(
    taker_buy_share=0.6412,
    price_change_1h=2.314,
    price_change_24h=-1.2,
    open_interest_change_1h=4.2,
    funding_percentile=85.2,
    turnover_24h=1.2e8,
    rank_top_percent=100 * 1 / 31,
)
EN = (
    "Taker buys 64% · price +2.31% 1h, -1.20% 24h · OI +4.20% 1h",
    "24h turnover $120.00M · top 3% for 14:00 UTC · funding percentile 85 (30 d)",
)
RU = (
    "Покупки тейкеров 64% · цена +2.31% за 1 ч, -1.20% за 24 ч · OI +4.20% за 1 ч",
    "Оборот за 24 ч $120.00M · топ 3% для 14:00 UTC · перцентиль фандинга 85 (30 дн.)",
)


def alert(context: AlertContext | None = FULL, **changes: object) -> Alert:
    fields: dict[str, object] = {
        "symbol": SYMBOL,
        "asset": "SOL",
        "alert_type": AlertType.SPIKE,
        "hour": HOUR,
        "detected_at": DETECTED,
        "current_volume": 25.5e6,
        "previous_volume": 5e6,
        "ratio": 5.1,
        "price": 100.0,
        "funding_rate": 0.00005,
        "context": context,
    }
    fields.update(changes)
    return Alert(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def i18n():
    compile_catalogs()
    return create_i18n()


# --- the words ------------------------------------------------------------------------------


@pytest.mark.parametrize(("locale", "lines"), [("en", EN), ("ru", RU)])
def test_spike_message_carries_the_context_in_two_lines(i18n, locale: str, lines: tuple[str, str]) -> None:
    text = render_alert(
        alert(), i18n=i18n, locale=locale, tier=Tier.ELITE, private=True, webapp_url=None
    ).text.split("\n")
    assert text[3:5] == list(lines)  # after headline, price and funding


def test_every_unknown_figure_reads_unknown_never_zero(i18n) -> None:
    empty = AlertContext()
    en = render_alert(alert(empty), i18n=i18n, locale="en", tier=Tier.ELITE, private=True, webapp_url=None)
    assert en.text.split("\n")[3:5] == [
        "Taker buys n/a · price n/a 1h, n/a 24h · OI n/a 1h",
        "24h turnover n/a · rank n/a · funding percentile n/a (30 d)",
    ]
    ru = render_alert(alert(empty), i18n=i18n, locale="ru", tier=Tier.ELITE, private=True, webapp_url=None)
    assert ru.text.split("\n")[3:5] == [
        "Покупки тейкеров н/д · цена н/д за 1 ч, н/д за 24 ч · OI н/д за 1 ч",
        "Оборот за 24 ч н/д · ранг н/д · перцентиль фандинга н/д (30 дн.)",
    ]
    context_part = "\n".join(en.text.split("\n")[3:])
    assert "0%" not in context_part and "$0" not in context_part


def test_context_lines_are_translated_in_every_locale(i18n) -> None:
    for locale in SUPPORTED_LOCALES:
        lines = context_lines(FULL, HOUR, lambda msgid, loc=locale: i18n.gettext(msgid, locale=loc))
        assert len(lines) == 2
        assert "64%" in lines[0] and "+4.20%" in lines[0] and "$120.00M" in lines[1] and "3%" in lines[1]
        assert "14:00" in lines[1]
        if locale != "en":
            assert lines != EN, locale


def test_an_alert_stored_before_contexts_existed_has_no_context_lines(i18n) -> None:
    text = render_alert(alert(None), i18n=i18n, locale="en", tier=Tier.ELITE, private=True, webapp_url=None)
    assert len(text.text.split("\n")) == 3


def test_the_json_form_carries_the_context_and_reads_it_back() -> None:
    data = alert().to_json_dict()
    assert data["context"] == {
        "takerBuyShare": 0.6412,
        "priceChange1h": 2.314,
        "priceChange24h": -1.2,
        "openInterestChange1h": 4.2,
        "openInterestAsOf": None,
        "fundingPercentile": 85.2,
        "turnover24h": 1.2e8,
        "rankTopPercent": 100 / 31,
    }
    assert Alert.from_json(alert().to_json()).context == FULL
    partial = alert(AlertContext(taker_buy_share=0.5)).to_json_dict()["context"]
    assert partial["takerBuyShare"] == 0.5 and partial["rankTopPercent"] is None
    assert "context" not in alert(None).to_json_dict()


# --- the figures from stored data -------------------------------------------------------------


async def seed(
    pool: asyncpg.Pool,
    *,
    same_hour_days: int = 30,
    day_hours: int = 23,
    minute_24h_ago: bool = True,
    funding_days: int = 30,
) -> None:
    """SOLUSDT: the same UTC hour on `same_hour_days` previous days at 1M, 2M, … USDT; the
    `day_hours` hours before HOUR at 2M each; the minute 24 h before DETECTED closing at 80;
    one funding snapshot a day back `funding_days` days, rate (d - 10) × 1e-5 on day d."""
    day_ago = DETECTED.replace(second=0) - timedelta(days=1)
    await pool.execute(
        "SELECT ensure_candle_partitions($1::date, $2::date)", (HOUR - timedelta(days=31)).date(), HOUR.date()
    )
    if minute_24h_ago:
        await pool.execute(
            "INSERT INTO candles_1m VALUES ($1, $2, 81, 82, 79, 80, 10, 800, 5, 5, 400)", SYMBOL, day_ago
        )
    hours = [(HOUR - timedelta(days=d), d * 1e6) for d in range(1, same_hour_days + 1)]
    hours += [(HOUR - timedelta(hours=h), 2e6) for h in range(1, day_hours + 1)]
    await pool.executemany(
        """INSERT INTO candles_1h VALUES ($1, $2, 1, 1, 1, 1, 1, $3, 1, 0, 0)
           ON CONFLICT (symbol, open_time) DO UPDATE SET quote_volume = EXCLUDED.quote_volume""",
        [(SYMBOL, at, volume) for at, volume in hours],
    )
    await pool.executemany(
        "INSERT INTO mark_snapshots (symbol, ts, mark_price, funding_rate) VALUES ($1, $2, 100, $3)",
        [
            (SYMBOL, DETECTED - timedelta(days=d) + timedelta(seconds=1), (d - 10) * 1e-5)
            for d in range(1, funding_days + 1)
        ],
    )


async def context_of(pool: asyncpg.Pool, item: Alert) -> AlertContext:
    b = await db_context.baseline(
        pool, item.symbol, item.hour, item.detected_at, item.current_volume, item.funding_rate
    )
    return stored_context(item, b)


async def test_stored_figures_match_hand_computed_values(db: asyncpg.Pool) -> None:
    await seed(db)
    ctx = await context_of(db, alert(None))
    # 25.5M this hour: 26M..30M (5 of 30 days) at or above it → (5 + 1) / 31
    assert ctx.rank_top_percent == pytest.approx(100 * 6 / 31)
    # 23 closed hours at 2M, and this hour's 25.5M
    assert ctx.turnover_24h == pytest.approx(23 * 2e6 + 25.5e6)
    # 100 now against 80 a day ago
    assert ctx.price_change_24h == pytest.approx(25.0)
    # rate 5e-5: days 1..15 ((d - 10) × 1e-5 <= 5e-5) of 30 are at or below it
    assert ctx.funding_percentile == pytest.approx(50.0)
    assert ctx.taker_buy_share is None and ctx.open_interest_change_1h is None  # not stored data


async def test_above_every_day_is_top_3_percent(db: asyncpg.Pool) -> None:
    await seed(db)
    ctx = await context_of(db, alert(None, current_volume=31e6))
    assert ctx.rank_top_percent == pytest.approx(100 / 31)


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ({"same_hour_days": 26}, "rank_top_percent"),  # fewer than 27 of the last 30 days
        ({"day_hours": 22}, "turnover_24h"),  # an hour of the last day not stored
        ({"minute_24h_ago": False}, "price_change_24h"),
        ({"funding_days": 28}, "funding_percentile"),  # snapshots only 28 days back
    ],
)
async def test_missing_inputs_are_unknown_not_zero(
    db: asyncpg.Pool, missing: dict[str, object], field: str
) -> None:
    await seed(db, **missing)  # type: ignore[arg-type]
    ctx = await context_of(db, alert(None))
    assert getattr(ctx, field) is None
    known = {f: v for f, v in ctx.to_json_dict().items() if v is not None}
    assert len(known) == 3  # the other stored figures are still there


async def test_without_a_funding_rate_its_percentile_is_unknown(db: asyncpg.Pool) -> None:
    await seed(db)
    assert (await context_of(db, alert(None, funding_rate=None))).funding_percentile is None


async def test_the_context_is_stored_with_the_alert_and_open_interest_merged_later(db: asyncpg.Pool) -> None:
    partial = AlertContext(taker_buy_share=0.5, rank_top_percent=10.0)
    alert_id = await insert_alert(db, alert(partial))
    assert alert_id is not None
    stored = await get_alert(db, alert_id)
    assert stored is not None and stored.context == partial
    await db_context.merge_context(db, alert_id, {"openInterestChange1h": -3.5})
    stored = await get_alert(db, alert_id)
    assert stored is not None and stored.context == AlertContext(
        taker_buy_share=0.5, rank_top_percent=10.0, open_interest_change_1h=-3.5
    )


async def test_the_context_query_is_served_by_the_primary_keys(db: asyncpg.Pool) -> None:
    """Every part of the one query per alert can read one symbol's key range (the seeded tables
    are too small for the planner to prefer an index by itself, so sequential scans are off)."""
    await seed(db)
    async with db.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
        try:
            rows = await conn.fetch(
                "EXPLAIN " + db_context.BASELINE,
                SYMBOL,
                [HOUR - timedelta(days=d) for d in range(1, 31)],
                1.0,
                HOUR - timedelta(hours=23),
                HOUR,
                DETECTED - timedelta(days=30),
                DETECTED,
                0.0,
                DETECTED - timedelta(days=1),
            )
        finally:
            await conn.execute("RESET enable_seqscan")
    plan = "\n".join(r[0] for r in rows)
    assert plan.count("candles_1h_pkey") == 2 and "mark_snapshots_pkey" in plan, plan
    assert "Seq Scan" not in plan, plan


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture
async def client(settings, db, redis):
    await add_symbols(db, [SYMBOL])
    app_settings = settings.model_copy(update={"bot_token": SecretStr(BOT_TOKEN)})
    app = create_app(app_settings, pool=db, redis=redis, clock=ManualClock(NOW))
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.mark.parametrize(("language", "lines"), [("en", EN), ("ru", RU)])
async def test_api_alert_items_carry_the_context_and_its_lines(
    client: TestClient, db: asyncpg.Pool, language: str, lines: tuple[str, str]
) -> None:
    at = NOW - timedelta(minutes=20)  # visible to a free reader (15 min late)
    hour = at.replace(minute=0, second=0, microsecond=0)
    with_context = await insert_alert(db, alert(hour=hour, detected_at=at))
    older = await insert_alert(
        db, alert(None, hour=hour - timedelta(hours=1), detected_at=at - timedelta(hours=1))
    )
    signed = tma(init_data(1200, language=language))
    body = await (await client.get("/api/alerts", headers=signed)).json()
    items = {item["id"]: item for item in body["alerts"]}
    item = items[with_context]
    assert item["context"] == FULL.to_json_dict()
    rendered = context_lines(FULL, hour, lambda m: client.server.app[I18N].gettext(m, locale=language))
    assert item["contextLines"] == list(rendered)
    assert rendered[0] == lines[0] and rendered[1].split(" · ")[0] == lines[1].split(" · ")[0]
    assert item["text"].split("\n")[3:] == item["contextLines"]  # the bot's words, in the text too
    assert items[older]["context"] is None and items[older]["contextLines"] == []


async def test_openapi_documents_the_context(client: TestClient) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert set(schemas["AlertContextItem"]["properties"]) == set(FULL.to_json_dict())
    assert "context" in schemas["AlertItem"]["properties"]
    assert "contextLines" in schemas["AlertItem"]["properties"]


# --- the figures from the hour's minutes (in memory, at detection) --------------------------------


def minute(m: int, q: float, taker: float, *, closed: bool = True, open_: float = 100.0) -> Kline:
    start = ms_from_utc(HOUR) + m * 60_000
    return Kline(
        symbol=SYMBOL,
        interval="1m",
        open_time_ms=start,
        close_time_ms=start + 59_999,
        open=open_,
        high=open_,
        low=open_,
        close=open_,
        volume=q / open_,
        quote_volume=q,
        trades=1,
        taker_buy_volume=taker / open_,
        taker_buy_quote=taker,
        closed=closed,
        event_time_ms=start + (60_000 if closed else 30_000),
    )


def test_taker_share_and_hour_move_sum_the_hours_minutes_up_to_the_alert() -> None:
    flows = HourFlows()
    flows.seed([minute(0, 1e6, 0.2e6, open_=80.0), *(minute(m, 1e6, 0.5e6) for m in range(1, 7))])
    flows.add(minute(7, 4e6, 1e6, closed=False))  # the minute in progress
    flows.add(minute(7, 3e6, 0.9e6, closed=False))  # a stale partial: q only grows within a minute
    ctx = flows.live_context(alert(None))  # detected at 14:07:30
    assert ctx.taker_buy_share == pytest.approx((0.2e6 + 6 * 0.5e6 + 1e6) / (7e6 + 4e6))
    assert ctx.price_change_1h == pytest.approx((100.0 / 80.0 - 1) * 100)
    flows.add(minute(7, 5e6, 2e6))  # its close is final
    flows.add(minute(7, 4.5e6, 0.1e6, closed=False))  # a partial after the close changes nothing
    assert flows.live_context(alert(None)).taker_buy_share == pytest.approx((3.2e6 + 2e6) / 12e6)


def test_a_minute_not_seen_makes_the_share_unknown_and_without_the_first_the_move_too() -> None:
    flows = HourFlows()
    flows.seed(minute(m, 1e6, 0.5e6) for m in (1, 2, 3, 4, 5, 6, 7))  # minute 0 missing
    ctx = flows.live_context(alert(None))
    assert ctx.taker_buy_share is None and ctx.price_change_1h is None
    assert flows.live_context(alert(None, symbol="BTCUSDT")) == AlertContext()  # never seen


# --- open interest kept warm before the crossing (core rule; ingest/open_interest.py) ------------


def test_an_hour_is_near_the_rule_at_two_thirds_of_both_thresholds() -> None:
    assert near_rule(2.0, 2e6, 3.0, 3e6)
    assert not near_rule(1.99, 2e6, 3.0, 3e6)  # the ratio short of 2x
    assert not near_rule(2.5, 1.99e6, 3.0, 3e6)  # the volume short of $2M
    assert near_rule(9.0, 50e6, 3.0, 3e6)  # past the rule: still warm (own thresholds climb on)


def test_a_warm_figure_counts_only_when_read_within_a_minute_of_the_alert() -> None:
    at = 1_000_000_000
    assert warm_open_interest_change(100.0, 104.2, at - 60_000, at) == pytest.approx(4.2)
    assert warm_open_interest_change(100.0, 104.2, at - 60_001, at) is None  # stale
    assert warm_open_interest_change(None, 104.2, at, at) is None  # hour's start unknown
    assert warm_open_interest_change(100.0, None, None, at) is None  # never read
    assert warm_open_interest_change(0.0, 104.2, at, at) is None  # nonsense: unknown, not infinite


def test_open_interest_answers_are_read_or_left_unknown() -> None:
    hour = ms_from_utc(HOUR)
    row = {"symbol": SYMBOL, "sumOpenInterest": "20403.637", "timestamp": hour}
    assert hour_start_figure([row], hour) == pytest.approx(20403.637)
    assert hour_start_figure([{**row, "timestamp": hour + 5 * 60_000}], hour) is None  # listed later
    assert hour_start_figure([], hour) is None and hour_start_figure({"code": -1}, hour) is None
    assert current_figure({"openInterest": "10659.509", "time": hour}) == (10659.509, hour)
    assert current_figure({"openInterest": "10659.509"}) == (10659.509, None)
    assert current_figure({"openInterest": "x"}) is None and current_figure([]) is None
