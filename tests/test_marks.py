"""Funding and mark-price history (`ingest.marks`, `db.marks`) against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from core.clock import ManualClock, utc_from_ms
from db import marks as db_marks
from ingest.marks import MarkRecorder
from ingest.parsers import MarkPrice
from ingest.retention import RetentionJob

T0 = int(datetime(2026, 3, 2, 14, 0, tzinfo=UTC).timestamp() * 1000)
FIVE_MIN = 5 * 60_000


def mark(symbol: str, price: float, at_ms: int, funding: float | None = 0.0001) -> MarkPrice:
    return MarkPrice(symbol, price, price - 1, funding, T0 + 8 * 3_600_000, at_ms)


def frames(recorder: MarkRecorder) -> None:
    """Marks every 30 s from 14:00 to 14:11 (two 5-minute boundaries crossed)."""
    for step in range(0, 23):
        at = T0 + step * 30_000
        recorder.observe([mark("BTCUSDT", 100 + step, at), mark("ETHUSDT", 10 + step, at, None)], at)


async def test_one_snapshot_per_symbol_per_interval_with_the_values_at_its_start(db: asyncpg.Pool) -> None:
    recorder = MarkRecorder(db, interval_ms=FIVE_MIN)
    frames(recorder)
    assert await recorder.flush() == 4
    btc = await db_marks.history(db, "BTCUSDT", utc_from_ms(T0), utc_from_ms(T0 + 3_600_000))
    # 14:05 carries the last values seen before it (the 14:04:30 frame), likewise 14:10.
    assert [(s.ts, s.mark_price) for s in btc] == [
        (utc_from_ms(T0 + FIVE_MIN), 109.0),
        (utc_from_ms(T0 + 2 * FIVE_MIN), 119.0),
    ]
    assert btc[0].funding_rate == 0.0001 and btc[0].index_price == 108.0
    assert btc[0].next_funding_time == utc_from_ms(T0 + 8 * 3_600_000)
    eth = await db_marks.history(db, "ETHUSDT", utc_from_ms(T0), utc_from_ms(T0 + 3_600_000))
    assert [s.funding_rate for s in eth] == [None, None]


async def test_a_replay_after_a_restart_writes_nothing_twice(db: asyncpg.Pool) -> None:
    first = MarkRecorder(db, interval_ms=FIVE_MIN)
    frames(first)
    await first.flush()
    again = MarkRecorder(db, interval_ms=FIVE_MIN)
    frames(again)
    assert await again.flush() == 0
    assert await db.fetchval("SELECT count(*) FROM mark_snapshots") == 4


async def test_a_forgotten_symbol_is_not_snapshotted_again(db: asyncpg.Pool) -> None:
    recorder = MarkRecorder(db, interval_ms=FIVE_MIN)
    recorder.observe([mark("BTCUSDT", 1, T0), mark("XUSDT", 2, T0)], T0)
    recorder.forget("XUSDT")  # delisted
    recorder.observe([mark("BTCUSDT", 3, T0 + FIVE_MIN)], T0 + FIVE_MIN)
    await recorder.flush()
    assert [r["symbol"] for r in await db.fetch("SELECT symbol FROM mark_snapshots")] == ["BTCUSDT"]


async def test_retention_deletes_snapshots_older_than_the_retention(db: asyncpg.Pool) -> None:
    now = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    old = db_marks.MarkSnapshot("BTCUSDT", now - timedelta(days=91), 1.0, None, None, None)
    recent = db_marks.MarkSnapshot("BTCUSDT", now - timedelta(days=89), 2.0, None, None, None)
    assert await db_marks.insert_snapshots(db, [old, recent]) == 2
    await RetentionJob(db, 90, clock=ManualClock(now)).run_once()
    assert [r["mark_price"] for r in await db.fetch("SELECT mark_price FROM mark_snapshots")] == [2.0]
