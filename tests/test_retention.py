"""The retention job bounds growth: delivery rows and mark snapshots past their retention are
deleted, in batches, and nothing younger is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from core.clock import ManualClock
from core.settings import load_settings
from db import marks as db_marks
from db import retention as db_retention
from ingest.retention import RetentionJob
from tests.delivery_harness import add_alert, add_user

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


async def add_deliveries(db: asyncpg.Pool, alert_id: int, chats: range, created: datetime) -> None:
    await db.execute(
        "INSERT INTO deliveries (alert_id, chat_id, due_at, status, created_at) "
        "SELECT $1, c, $2, 'sent', $2 FROM unnest($3::bigint[]) AS c",
        alert_id,
        created,
        list(chats),
    )


async def test_deliveries_older_than_the_retention_are_deleted_in_batches(db: asyncpg.Pool):
    await add_user(db, 1)
    old = await add_alert(db, NOW - timedelta(days=40))
    recent = await add_alert(db, NOW - timedelta(days=29), symbol="ETHUSDT", asset="ETH")
    await add_deliveries(db, old.id, range(1, 26), NOW - timedelta(days=31))  # type: ignore[arg-type]
    await add_deliveries(db, recent.id, range(1, 4), NOW - timedelta(days=29))  # type: ignore[arg-type]
    batches: list[int] = []

    async def between() -> None:
        batches.append(await db.fetchval("SELECT count(*) FROM deliveries"))

    cutoff = NOW - timedelta(days=30)
    deleted = await db_retention.delete_deliveries_before(db, cutoff, batch=10, between=between)
    assert deleted == 25
    assert batches == [18, 8]  # 10 per statement, then the last 5 in a short batch
    rows = await db.fetch("SELECT alert_id, count(*) AS n FROM deliveries GROUP BY alert_id")
    assert [(r["alert_id"], r["n"]) for r in rows] == [(recent.id, 3)]
    assert await db.fetchval("SELECT count(*) FROM alerts") == 2  # alerts themselves are kept


async def test_the_retention_job_applies_both_retentions(db: asyncpg.Pool):
    await add_user(db, 1)
    alert = await add_alert(db, NOW - timedelta(days=10))
    await add_deliveries(db, alert.id, range(1, 8), NOW - timedelta(days=8))  # type: ignore[arg-type]
    snapshots = [
        db_marks.MarkSnapshot("BTCUSDT", NOW - timedelta(days=91, minutes=5 * i), 1.0, None, None, None)
        for i in range(7)
    ]
    kept = db_marks.MarkSnapshot("BTCUSDT", NOW - timedelta(days=89), 2.0, None, None, None)
    await db_marks.insert_snapshots(db, [*snapshots, kept])
    job = RetentionJob(db, 90, delivery_retention_days=7, batch=3, clock=ManualClock(NOW))
    run = await job.run_once()
    assert (run.deliveries_deleted, run.mark_snapshots_deleted) == (7, 7)
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 0
    assert [r["mark_price"] for r in await db.fetch("SELECT mark_price FROM mark_snapshots")] == [2.0]
    again = await job.run_once()
    assert (again.deliveries_deleted, again.mark_snapshots_deleted) == (0, 0)


async def test_the_stats_day_counters_of_deleted_days_go_with_their_rows(db: asyncpg.Pool):
    """The counters `/stats` reads (migration 122) of the days retention emptied are removed; the
    counters of days that still have rows keep adding up to those rows."""
    await add_user(db, 1)
    alert = await add_alert(db, NOW - timedelta(days=10))
    await add_deliveries(db, alert.id, range(1, 6), NOW - timedelta(days=9))  # type: ignore[arg-type]
    await add_deliveries(db, alert.id, range(6, 9), NOW - timedelta(days=6, hours=13))  # type: ignore[arg-type]
    await add_deliveries(db, alert.id, range(9, 11), NOW - timedelta(hours=1))  # type: ignore[arg-type]
    counters = (
        "SELECT day, sum(n)::int AS n FROM delivery_day_counts GROUP BY day HAVING sum(n) <> 0 ORDER BY day"
    )
    assert [r["n"] for r in await db.fetch(counters)] == [5, 3, 2]
    job = RetentionJob(db, 90, delivery_retention_days=7, batch=100, clock=ManualClock(NOW))
    assert (await job.run_once()).deliveries_deleted == 5
    days = [r["day"] for r in await db.fetch("SELECT DISTINCT day FROM delivery_day_counts ORDER BY day")]
    cutoff_day = (NOW - timedelta(days=7)).date()
    assert days and min(days) >= cutoff_day  # no counter row left of a day before the cutoff
    assert [r["n"] for r in await db.fetch(counters)] == [3, 2]  # still what is in the table


def test_delivery_retention_is_a_setting_with_a_month_by_default():
    assert load_settings(_env_file=None).delivery_retention_days == 30
    assert load_settings(_env_file=None, delivery_retention_days="3").delivery_retention_days == 3


async def add_broadcast(
    db: asyncpg.Pool, status: str, finished: datetime | None, recipients: range, sent: int
) -> int:
    broadcast_id: int = await db.fetchval(
        "INSERT INTO broadcasts (admin_id, text, status, total, sent, created_at, finished_at) "
        "VALUES (1, 'news', $1, $2, $3, $4, $5) RETURNING id",
        status,
        len(recipients),
        sent,
        NOW - timedelta(days=45),
        finished,
    )
    await db.execute(
        "INSERT INTO broadcast_recipients (broadcast_id, user_id, status) "
        "SELECT $1, u, 'sent' FROM unnest($2::bigint[]) AS u",
        broadcast_id,
        list(recipients),
    )
    return broadcast_id


async def test_recipients_of_broadcasts_finished_before_the_retention_are_deleted(db: asyncpg.Pool):
    old_done = await add_broadcast(db, "done", NOW - timedelta(days=31), range(1, 13), 12)
    old_cancelled = await add_broadcast(db, "cancelled", NOW - timedelta(days=35), range(1, 3), 2)
    recent = await add_broadcast(db, "done", NOW - timedelta(days=29), range(1, 4), 3)
    running = await add_broadcast(db, "running", None, range(1, 5), 0)  # started 45 days ago
    job = RetentionJob(db, 90, delivery_retention_days=30, batch=5, clock=ManualClock(NOW))
    run = await job.run_once()
    assert run.broadcast_recipients_deleted == 14
    rows = await db.fetch(
        "SELECT broadcast_id, count(*) AS n FROM broadcast_recipients GROUP BY 1 ORDER BY 1"
    )
    assert [(r["broadcast_id"], r["n"]) for r in rows] == [(recent, 3), (running, 4)]
    kept = await db.fetch("SELECT id, total, sent FROM broadcasts ORDER BY id")
    assert [(r["id"], r["total"], r["sent"]) for r in kept] == [
        (old_done, 12, 12),  # the broadcast and its totals stay
        (old_cancelled, 2, 2),
        (recent, 3, 3),
        (running, 4, 0),
    ]
    assert (await job.run_once()).broadcast_recipients_deleted == 0
