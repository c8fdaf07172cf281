"""Who receives an hour's EARLY rows (the public one and the higher grades), against real
PostgreSQL: pro and elite users who opted in, each at the earliest row that projects their own
multiple while the hour is still below it, once per symbol-hour, never after their SPIKE; the
rows' round trip through db.alerts, the restart's `fired_since`, and the curves job over
30 days of stored candles, checked against hand-computed shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from bot.delivery.recipients import insert_deliveries
from core.alert_message import alert_lines
from core.alerts import Alert, AlertType, Level
from core.clock import ManualClock
from db import alerts as db_alerts
from db import volume_curves as db_curves
from db.partitions import ensure_partitions
from ingest.detector import SpikeDetector
from ingest.volume_curves import VolumeCurvesJob
from tests.delivery_harness import add_user

HOUR = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PREVIOUS = 6e6
ALL_TYPES = ["SPIKE", "HALF_UPDATE", "FULL_UPDATE", "EARLY"]


def row(
    kind: AlertType, minute: float, current: float, projected: float | None, level: Level | None
) -> Alert:
    return Alert(
        symbol="SOLUSDT",
        asset="SOL",
        alert_type=kind,
        hour=HOUR,
        detected_at=HOUR + timedelta(minutes=minute),
        current_volume=current,
        previous_volume=PREVIOUS,
        ratio=current / PREVIOUS,
        price=20.0,
        funding_rate=0.0001,
        level=level,
        projected_volume=projected,
    )


async def store(db: asyncpg.Pool, alert: Alert) -> Alert:
    alert_id = await db_alerts.insert_alert(db, alert)
    assert alert_id is not None
    return alert.with_id(alert_id)


async def climb(db: asyncpg.Pool) -> dict[str, Alert]:
    """The rows of the detector test's hour: the public EARLY (projects 3.01×), the 4× EARLY
    (projects 4.01× at 2.75×), then the public SPIKE."""
    return {
        "early": await store(db, row(AlertType.EARLY, 21.2, 6.37e6, 18.05e6, None)),
        "early4": await store(db, row(AlertType.EARLY, 41.2, 16.5e6, 24.05e6, Level(4.0, 3e6))),
        "spike": await store(db, row(AlertType.SPIKE, 45.2, 18.1e6, None, None)),
    }


async def fan_out(db: asyncpg.Pool, alert: Alert) -> set[int]:
    assert alert.id is not None
    async with db.acquire() as conn:
        await insert_deliveries(conn, alert.id, alert.detected_at)
    rows = await db.fetch("SELECT chat_id FROM deliveries WHERE alert_id = $1", alert.id)
    return {r["chat_id"] for r in rows}


async def test_each_opted_in_user_gets_the_first_early_row_projecting_their_multiple(db: asyncpg.Pool):
    await add_user(db, 1, tier="free", alert_types=ALL_TYPES)  # free: no early warning
    await add_user(db, 2, tier="pro")  # the default types: off
    await add_user(db, 3, tier="pro", alert_types=ALL_TYPES)  # the default multiple: the public row
    await add_user(db, 4, tier="elite", alert_types=ALL_TYPES, spike_multiple=4.0)
    await add_user(db, 5, tier="pro", alert_types=ALL_TYPES, spike_multiple=5.0)  # never projected
    await add_user(db, 6, tier="pro", alert_types=ALL_TYPES, spike_multiple=3.0, min_quote_volume=20e6)
    await add_user(db, 7, tier="elite", alert_types=ALL_TYPES, spike_multiple=3.0)
    await db.execute("INSERT INTO chats (id, kind, tier, connected_by) VALUES (-100, 'group', 'elite', 1)")
    rows = await climb(db)
    assert await fan_out(db, rows["early"]) == {3, 7}
    # 6: the public row projects $18.05M, below their $20M; the 4× row projects 3× and $24M
    assert await fan_out(db, rows["early4"]) == {4, 6}
    assert await fan_out(db, rows["spike"]) == {1, 2, 3, 7, -100}  # 6: not yet $20M
    # a fan-out read twice writes nothing twice
    assert await fan_out(db, rows["early"]) == {3, 7}


async def test_one_early_warning_per_user_and_hour_and_none_after_their_spike(db: asyncpg.Pool):
    await add_user(db, 3, tier="pro", alert_types=ALL_TYPES)
    await add_user(db, 8, tier="elite", alert_types=ALL_TYPES)
    rows = await climb(db)
    assert await fan_out(db, rows["early"]) == {3, 8}
    # user 3 raises their multiple mid-hour: the 4× row projects it, but they had this hour's EARLY
    await db.execute("UPDATE user_settings SET spike_multiple = 4.0 WHERE user_id = 3")
    # user 8's SPIKE of the hour was sent (they had lowered their multiple), then they raise it
    spike = await store(db, row(AlertType.SPIKE, 30, 9e6, None, Level(4.0, 3e6)))
    await db.execute(
        "INSERT INTO deliveries (alert_id, chat_id, priority, due_at, spike_symbol, spike_hour, status) "
        "VALUES ($1, 8, 0, now(), 'SOLUSDT', $2, 'sent')",
        spike.id,
        HOUR,
    )
    await db.execute("UPDATE user_settings SET spike_multiple = 4.0 WHERE user_id = 8")
    assert await fan_out(db, rows["early4"]) == set()
    counts = await db.fetch(
        "SELECT chat_id, count(*) AS n FROM deliveries WHERE early_hour IS NOT NULL GROUP BY 1 ORDER BY 1"
    )
    assert [(r["chat_id"], r["n"]) for r in counts] == [(3, 1), (8, 1)]


async def test_early_rows_round_trip_and_restore_their_projection(db: asyncpg.Pool):
    rows = await climb(db)
    got = await db_alerts.get_alert(db, rows["early4"].id or 0)
    assert got == rows["early4"]
    data = got.to_json_dict()
    assert data["alertType"] == "EARLY" and data["isProjection"] is True and data["isUpdate"] is False
    assert data["projectedVolume"] == 24.05e6 and data["projectedRatio"] == pytest.approx(4.0083, abs=1e-4)
    assert Alert.from_json(got.to_json()) == got
    fired = await db_alerts.fired_since(db, HOUR)
    assert [(f[2], f[8]) for f in fired] == [
        (AlertType.EARLY, 18.05e6),
        (AlertType.EARLY, 24.05e6),
        (AlertType.SPIKE, 0.0),
    ]
    # a second public EARLY of the hour is refused by its key: ingest's retry after a crash
    assert await db_alerts.insert_alert(db, rows["early"]) is None
    with pytest.raises(asyncpg.CheckViolationError):  # an EARLY is never without its projection
        await db_alerts.insert_alert(db, row(AlertType.EARLY, 50, 20e6, None, Level(5.0, 3e6)))


def test_the_message_says_plainly_it_is_a_projection() -> None:
    alert = row(AlertType.EARLY, 21.2, 6.37e6, 18.05e6, None)
    lines = alert_lines(alert, lambda s: s)
    assert lines[:3] == [
        "EARLY WARNING (projection): SOL on pace for $18.05M this hour (3.01× prev)",
        "Not a spike yet: so far $6.37M (1.06× prev)",
        "Projected from the usual pace of this hour of the day; it may not get there.",
    ]


async def test_curves_job_pools_the_complete_hours_of_30_days(db: asyncpg.Pool):
    """Each day at 12:00 UTC: minute 0 has 3 parts, minutes 1-59 one part each (62 parts); one
    day's 12:00 hour lacks a minute (not pooled), and an 11:00 hour is never part of 12:00's."""
    now = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)
    records = []
    for day in range(30):
        start = datetime(2026, 3, 2, 12, tzinfo=UTC) - timedelta(days=day)
        for m in range(60):
            if day == 7 and m == 33:
                continue  # a hole: this hour is incomplete
            q = (300.0 if m == 0 else 100.0) * (day + 1)
            records.append(("SOLUSDT", start + timedelta(minutes=m), q))
        records.append(("SOLUSDT", start - timedelta(minutes=1), 1e9))  # 11:59, another hour
    await ensure_partitions(db, (now - timedelta(days=31)).date(), now.date())
    await db.executemany(
        "INSERT INTO candles_1m (symbol, open_time, open, high, low, close, volume, quote_volume, trades, "
        "taker_buy_volume, taker_buy_quote) VALUES ($1, $2, 1, 1, 1, 1, 1, $3, 1, 0, 0)",
        records,
    )
    detector = SpikeDetector(3.0, 3e6)
    job = VolumeCurvesJob(db, detector, lambda: ["SOLUSDT"], clock=ManualClock(now))
    assert await job.run_once() == 1  # only 12:00 has candles
    (symbol, hour_of_day, curve), *rest = await db_curves.load(db, ["SOLUSDT"])
    assert (symbol, hour_of_day, curve.days, rest) == ("SOLUSDT", 12, 29, [])
    # every day's shape is the same (scaled): minute 0 is 3/62 of the hour, each next one 1/62
    assert curve.shares[0] == pytest.approx(3 / 62)
    assert curve.shares[29] == pytest.approx(32 / 62)
    assert curve.shares[59] == 1.0
    assert detector._curves[("SOLUSDT", 12)] == curve  # handed to the detector
    # fresh for a day: the next run computes nothing
    assert await job.run_once() == 0
