"""Daily candle partitions: created ahead, dropped behind, rows land in the right one."""

from datetime import UTC, date, datetime, timedelta

from db.partitions import drop_partitions_before, ensure_partitions, list_partitions, maintain


async def test_partitions_are_created_and_dropped_by_day(db) -> None:
    await drop_partitions_before(db, date(2100, 1, 1))
    assert await ensure_partitions(db, date(2026, 1, 30), date(2026, 2, 2)) == 4
    assert await ensure_partitions(db, date(2026, 1, 30), date(2026, 2, 2)) == 0
    assert await list_partitions(db) == [
        "candles_1m_20260130",
        "candles_1m_20260131",
        "candles_1m_20260201",
        "candles_1m_20260202",
    ]
    await db.execute(
        "INSERT INTO candles_1m VALUES ('BTCUSDT', $1, 1, 2, 0.5, 1.5, 10, 15, 3, 5, 7)",
        datetime(2026, 1, 31, 23, 59, tzinfo=UTC),
    )
    assert await db.fetchval("SELECT count(*) FROM candles_1m_20260131") == 1
    assert await drop_partitions_before(db, date(2026, 2, 1)) == 2
    assert await list_partitions(db) == ["candles_1m_20260201", "candles_1m_20260202"]
    assert await db.fetchval("SELECT count(*) FROM candles_1m") == 0
    await drop_partitions_before(db, date(2100, 1, 1))


async def test_retention_job_keeps_tomorrow_and_drops_beyond_retention(db) -> None:
    await drop_partitions_before(db, date(2100, 1, 1))
    today = date(2026, 11, 22)
    await ensure_partitions(db, today - timedelta(days=100), today - timedelta(days=95))
    created, dropped = await maintain(db, today, retention_days=90)
    names = await list_partitions(db)
    assert "candles_1m_20261123" in names and "candles_1m_20261122" in names
    assert dropped == 6 and created == 4
    assert min(names) == "candles_1m_20261120"
    await drop_partitions_before(db, date(2100, 1, 1))
