"""The track record and alert outcomes over real HTTP: GET /api/record (30 and 90 days, grouped,
quartiles by hand), the /record page, the `outcome` of /api/alerts items, the OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.alerts import AlertType
from core.clock import ManualClock
from core.outcomes import Outcome
from db import alert_outcomes
from db.alerts import get_alert
from ingest.outcomes import OutcomesJob
from tests.bot_harness import compile_catalogs
from tests.miniapp_harness import NOW, add_alert, add_symbols
from tests.outcome_harness import Scenario, write
from webapp.api.alerts import alert_item
from webapp.app import create_app

approx = pytest.approx


@pytest.fixture
async def client(settings, db, redis):
    compile_catalogs()  # the page and API texts in every language, from the .po files
    await add_symbols(db, ["BTCUSDT", "ETHUSDT", "XUSDT"])
    app = create_app(settings, pool=db, redis=redis, clock=ManualClock(NOW))
    async with TestClient(TestServer(app)) as client:
        yield client


def moved(change_1h: float | None, taker: float | None = 0.7) -> Outcome:
    return Outcome(
        horizon_minutes=60,
        taker_share=taker,
        direction=1,
        direction_source="taker",
        changes=(0.1, change_1h, None),
        btc_changes=(0.0, 0.5, None),
        mfe=None,
        mae=None,
        rel_mfe=None,
        rel_mae=None,
    )


async def spike(
    db: asyncpg.Pool, minutes_ago: float, ratio: float, change_1h: float | None, **kw: float
) -> int:
    alert_id = await add_alert(db, "ETHUSDT", NOW - timedelta(minutes=minutes_ago), ratio=ratio)
    await db.execute("UPDATE alerts SET symbol = symbol || $2 WHERE id = $1", alert_id, str(alert_id))
    await alert_outcomes.store(db, alert_id, moved(change_1h, **kw), NOW)
    return alert_id


def bucket(body: dict, grouping: str, key: str) -> dict:
    group = next(g for g in body["groupings"] if g["key"] == grouping)
    return next(b for b in group["buckets"] if b["key"] == key)


def horizon(b: dict, minutes: int) -> dict:
    return next(h for h in b["horizons"] if h["minutes"] == minutes)


async def five_spikes(db: asyncpg.Pool) -> None:
    """Moves after 1 h of -4, -1, +0.5, +2, +3 % (ratios 3.5, 3.5, 5, 7, 12), one without an
    outcome yet, one update (not counted) and one SPIKE 40 days ago (+10 %)."""
    await spike(db, 120, 3.5, -4.0, taker=0.35)
    await spike(db, 180, 3.5, -1.0, taker=0.45)
    await spike(db, 240, 5.0, 0.5, taker=0.55)
    await spike(db, 300, 7.0, 2.0, taker=0.65)
    await spike(db, 360, 12.0, 3.0, taker=0.65)
    await add_alert(db, "BTCUSDT", NOW - timedelta(minutes=5), ratio=20.0)  # too fresh for an outcome
    await add_alert(db, "ETHUSDT", NOW - timedelta(minutes=30), AlertType.HALF_UPDATE)
    await spike(db, 40 * 24 * 60, 3.5, 10.0)


async def test_record_groups_every_spike_with_quartiles_by_hand(client: TestClient, db) -> None:
    await five_spikes(db)
    body = await (await client.get("/api/record?days=30")).json()
    assert body["days"] == 30 and body["bigMove"] == 2.0 and body["smallSample"] == 30
    everything = bucket(body, "all", "all")
    assert everything["alerts"] == 6 and everything["smallSample"] is True
    one_hour = horizon(everything, 60)
    # sorted -4, -1, 0.5, 2, 3: quartiles at positions 1, 2, 3; beyond ±2 %: -4 and 3
    assert one_hour["known"] == 5
    assert (one_hour["p25"], one_hour["median"], one_hour["p75"]) == (approx(-1.0), approx(0.5), approx(2.0))
    assert one_hour["bigShare"] == approx(0.4)
    assert horizon(everything, 240) == {"minutes": 240, "known": 0, "p25": None, "median": None, "p75": None,
                                        "bigShare": None}  # fmt: skip
    low_ratio = bucket(body, "ratio", "ratio-0")
    assert low_ratio["label"] == "3×–4×" and low_ratio["alerts"] == 2
    assert horizon(low_ratio, 60)["median"] == approx(-2.5) and horizon(low_ratio, 60)["p25"] == approx(-3.25)
    assert bucket(body, "ratio", "ratio-3")["alerts"] == 2  # 12× and the fresh 20×
    assert bucket(body, "taker", "taker-unknown")["alerts"] == 1  # the fresh one: no outcome
    assert horizon(bucket(body, "taker", "taker-3"), 60)["median"] == approx(2.5)
    assert [b["key"] for b in next(g for g in body["groupings"] if g["key"] == "liquidity")["buckets"]] == [
        "liquidity-0"
    ]  # $5M hours
    ninety = await (await client.get("/api/record?days=90")).json()
    assert bucket(ninety, "all", "all")["alerts"] == 7
    assert horizon(bucket(ninety, "all", "all"), 60)["median"] == approx(1.25)


async def test_record_refuses_other_windows(client: TestClient) -> None:
    response = await client.get("/api/record?days=7")
    assert response.status == 400 and (await response.json())["error"]


async def test_record_page_is_public_and_draws_each_bucket(client: TestClient, db) -> None:
    await five_spikes(db)
    response = await client.get("/record")
    assert response.status == 200
    html = await response.text()
    assert (
        "Track record" in html and 'data-bucket="ratio-0"' in html and 'data-bucket="taker-unknown"' in html
    )
    assert 'data-figure="median">+0.50%<' in html  # all alerts, after 1 h
    assert "small sample" in html
    four_hours = await (await client.get("/record?days=90&h=240")).text()
    assert "No outcome at this horizon yet." in four_hours
    russian = await (await client.get("/record", headers={"Accept-Language": "ru"})).text()
    assert "Статистика сигналов" in russian


async def test_alert_items_carry_their_outcome(client: TestClient, db) -> None:
    alert_id = await write(
        db, Scenario(), detected=NOW - timedelta(hours=5) + timedelta(minutes=20, seconds=30)
    )
    await OutcomesJob(db, lookback_days=30, clock=ManualClock(NOW)).run_once()
    fresh = await add_alert(db, "ETHUSDT", NOW - timedelta(minutes=16))
    body = await (await client.get("/api/alerts")).json()
    items = {a["id"]: a for a in body["alerts"]}
    assert items[fresh]["outcome"] is None
    outcome = items[alert_id]["outcome"]
    assert outcome["horizonMinutes"] == 240
    assert (outcome["change15m"], outcome["change1h"], outcome["change4h"]) == (
        approx(2.0),
        approx(-3.0),
        approx(5.0),
    )
    assert (outcome["vsBtc15m"], outcome["vsBtc1h"], outcome["vsBtc4h"]) == (
        approx(1.0),
        approx(-1.0),
        approx(3.0),
    )
    assert outcome["direction"] == "up" and outcome["directionSource"] == "taker"
    assert outcome["takerShare"] == approx(0.7)
    assert (outcome["mfe"], outcome["mae"], outcome["mfeVsBtc"], outcome["maeVsBtc"]) == (
        approx(8.0), approx(-5.0), approx(3.0), approx(-4.0)
    )  # fmt: skip


async def test_openapi_documents_the_record_and_outcomes(client: TestClient) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    operation = doc["paths"]["/api/record"]["get"]
    assert operation["parameters"][0]["name"] == "days" and operation["parameters"][0]["schema"]["enum"] == [
        30,
        90,
    ]
    assert "security" not in operation
    schemas = doc["components"]["schemas"]
    assert {"RecordPage", "RecordBucket", "RecordHorizon", "AlertOutcome"} <= set(schemas)
    assert "outcome" in schemas["AlertItem"]["properties"]


async def ranked(db: asyncpg.Pool, minutes_ago: float, top: float | None, change_1h: float) -> int:
    alert_id = await spike(db, minutes_ago, 3.5, change_1h)
    context = None if top is None else orjson.dumps({"rankTopPercent": top}).decode()
    await db.execute("UPDATE alerts SET context = $2::text::jsonb WHERE id = $1", alert_id, context)
    return alert_id


async def test_record_groups_by_rank_for_the_hour_of_the_day_by_hand(client: TestClient, db) -> None:
    """Ranks top 1 % (twice: +3, -1), 3.2 % (+0.5), 5 % (its bound: -4), 20 % (+2), 50 % (+6) and
    unknown (an alert without the rank: +1)."""
    await ranked(db, 100, 1.0, 3.0)
    await ranked(db, 110, 1.0, -1.0)
    await ranked(db, 120, 3.2, 0.5)
    await ranked(db, 130, 5.0, -4.0)
    await ranked(db, 140, 20.0, 2.0)
    await ranked(db, 150, 50.0, 6.0)
    await ranked(db, 160, None, 1.0)
    body = await (await client.get("/api/record?days=30")).json()
    group = next(g for g in body["groupings"] if g["key"] == "rank")
    assert [(b["key"], b["label"], b["alerts"]) for b in group["buckets"]] == [
        ("rank-unknown", "unknown", 1),
        ("rank-0", "top 1 %", 2),
        ("rank-1", "top 1–5 %", 2),
        ("rank-2", "top 5–20 %", 1),
        ("rank-3", "below the top 20 %", 1),
    ]
    top = horizon(bucket(body, "rank", "rank-0"), 60)
    # -1 and +3: the median halfway, quartiles at a quarter and three quarters; beyond 2 %: one of two
    assert (top["p25"], top["median"], top["p75"], top["bigShare"]) == (
        approx(0.0),
        approx(1.0),
        approx(2.0),
        0.5,
    )
    second = horizon(bucket(body, "rank", "rank-1"), 60)
    assert (second["median"], second["bigShare"]) == (approx(-1.75), 0.5)  # +0.5 and -4
    assert all(b["smallSample"] for b in group["buckets"])
    page = await (await client.get("/record")).text()
    assert 'data-grouping="rank"' in page and 'data-bucket="rank-0"' in page


async def test_early_warnings_have_their_outcomes_and_their_own_group(client: TestClient, db) -> None:
    """An EARLY's outcome is computed from candles like a SPIKE's (the scenario's +2 / -3 / +5 %),
    and the record publishes the early warnings as a group of their own, apart from the SPIKEs."""
    alert_id = await write(
        db, Scenario(), detected=NOW - timedelta(hours=5) + timedelta(minutes=20, seconds=30)
    )
    await db.execute(
        "UPDATE alerts SET alert_type = 'EARLY', projected_volume = 25e6 WHERE id = $1", alert_id
    )
    await spike(db, 120, 3.5, -4.0)  # a SPIKE: not in the early group
    assert await OutcomesJob(db, lookback_days=30, clock=ManualClock(NOW)).run_once() == 1
    stored = await db.fetchrow(
        "SELECT change_15m, change_1h, change_4h FROM alert_outcomes WHERE alert_id = $1", alert_id
    )
    assert tuple(stored) == (approx(2.0), approx(-3.0), approx(5.0))
    body = await (await client.get("/api/record?days=30")).json()
    early = bucket(body, "early", "early")
    assert early["alerts"] == 1 and early["label"] == "All early warnings"
    assert (horizon(early, 15)["median"], horizon(early, 60)["median"], horizon(early, 240)["median"]) == (
        approx(2.0),
        approx(-3.0),
        approx(5.0),
    )
    assert horizon(early, 60)["bigShare"] == 1.0
    assert bucket(body, "all", "all")["alerts"] == 1  # the SPIKE only
    # the API's item says it is a projection (the public feed is free's: no EARLY in it)
    alert = await get_alert(db, alert_id)
    assert alert is not None
    item = alert_item(alert, "text").model_dump(by_alias=True)
    assert (item["type"], item["isProjection"], item["projectedVolume"]) == ("EARLY", True, 25e6)
    assert item["projectedRatio"] == approx(25e6 / 6e6, abs=1e-4)
    free = await (await client.get("/api/alerts?type=EARLY")).json()
    assert free["alerts"] == []
