"""Hourly roll-ups (`candles_1h`, migration 016) stay equal to the aggregation of their minutes
for every way minutes are written: the candle writer's COPY and upsert, the forming hour, a
late correction, a gap, deletes, retention and the minutes stored before the migration."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from db import migrate as migrations
from db.candles import Candle, fetch_candles
from db.partitions import drop_partitions_before, ensure_partitions
from ingest.candles import CandleWriter
from ingest.parsers import Kline
from tests.conftest import PG_ADMIN_URL
from tests.test_candles import DAY0, by_hand, close_enough, synthetic_minutes

HOUR = timedelta(hours=1)
ROLLUPS = """
SELECT open_time AS bucket, open, high, low, close, volume, quote_volume, trades,
       taker_buy_volume, taker_buy_quote
FROM candles_1h WHERE symbol = $1 ORDER BY open_time
"""


async def rollups(conn: asyncpg.Pool | asyncpg.Connection, symbol: str = "XRPUSDT") -> list[Candle]:
    return [Candle(*row) for row in await conn.fetch(ROLLUPS, symbol)]


async def write(db: asyncpg.Pool, minutes: list[Kline]) -> None:
    writer = CandleWriter(db)
    for k in minutes:
        writer.add(k)
    await writer.flush()


async def test_rollups_equal_the_aggregation_of_their_minutes_including_the_forming_hour(
    db: asyncpg.Pool,
) -> None:
    start = DAY0 + timedelta(hours=3)
    minutes = synthetic_minutes(start, 5 * 60 + 17)  # five whole hours, then 17 minutes of a forming one
    await write(db, minutes[:150])  # COPY into an empty range
    await write(db, minutes[150:])  # more minutes of the hour already begun
    want = by_hand(minutes, HOUR)
    assert len(want) == 6
    assert close_enough(await rollups(db), want)
    # the read path gives the same bars from the roll-ups (1h) and from them again (4h)
    end = start + timedelta(hours=7)
    assert close_enough(await fetch_candles(db, "XRPUSDT", "1h", start, end, 500), want)
    assert close_enough(
        await fetch_candles(db, "XRPUSDT", "4h", start, end, 500), by_hand(minutes, timedelta(hours=4))
    )
    # the forming hour moves with each new minute
    more = synthetic_minutes(start, 5 * 60 + 18)[-1:]
    await write(db, more)
    assert close_enough((await rollups(db))[-1:], by_hand(minutes + more, HOUR)[-1:])


async def test_a_late_correction_of_a_minute_changes_its_hour(db: asyncpg.Pool) -> None:
    start = DAY0 + timedelta(hours=10)
    minutes = synthetic_minutes(start, 3 * 60)
    await write(db, minutes)
    # through the writer's upsert path: minute 75 (second hour) arrives again with other figures
    late = dataclasses.replace(minutes[75], high=minutes[75].high * 2, quote_volume=1e9, trades=999)
    fixed = [*minutes[:75], late, *minutes[76:]]
    await write(db, [late])
    assert close_enough(await rollups(db), by_hand(fixed, HOUR))
    assert (await rollups(db))[1].high == late.high
    # and a hand-written UPDATE of the last minute of the first hour (its close)
    await db.execute(
        "UPDATE candles_1m SET close = 1.5 WHERE symbol = 'XRPUSDT' AND open_time = $1",
        start + timedelta(minutes=59),
    )
    assert (await rollups(db))[0].close == 1.5


async def test_a_gap_leaves_an_hour_out_and_a_partial_hour_covers_what_is_stored(db: asyncpg.Pool) -> None:
    start = DAY0 + timedelta(hours=20)
    minutes = synthetic_minutes(start, 4 * 60)
    # hour 1 missing entirely, hour 2 missing its first 10 and last 5 minutes
    kept = minutes[:60] + minutes[130:175] + minutes[180:]
    await write(db, kept)
    got = await rollups(db)
    assert [c.open_time for c in got] == [start, start + 2 * HOUR, start + 3 * HOUR]
    assert close_enough(got, by_hand(kept, HOUR))
    # the gap is filled by a backfill later: the hour appears and equals its minutes
    await write(db, minutes[60:130])
    assert close_enough(await rollups(db), by_hand(sorted(minutes[:175] + minutes[180:], key=_open), HOUR))


def _open(k: Kline) -> int:
    return k.open_time_ms


async def test_deleted_minutes_truncate_and_retention_take_their_hours_along(db: asyncpg.Pool) -> None:
    start = DAY0 + timedelta(hours=22)  # two days: 22:00 and 23:00 of DAY0, then DAY0 + 1
    minutes = synthetic_minutes(start, 4 * 60)
    await write(db, minutes)
    assert len(await rollups(db)) == 4
    # deleting an hour's minutes: recomputed, then gone when none is left
    await db.execute(
        "DELETE FROM candles_1m WHERE open_time >= $1 AND open_time < $2",
        start + timedelta(minutes=30),
        start + HOUR,
    )
    assert close_enough((await rollups(db))[:1], by_hand(minutes[:30], HOUR))
    await db.execute("DELETE FROM candles_1m WHERE open_time < $1", start + HOUR)
    assert [c.open_time for c in await rollups(db)] == [start + HOUR * i for i in (1, 2, 3)]
    # retention drops DAY0's partition: its 23:00 goes too, the next day's hours stay
    assert await drop_partitions_before(db, (DAY0 + timedelta(days=1)).date()) >= 1
    assert [c.open_time for c in await rollups(db)] == [start + 2 * HOUR, start + 3 * HOUR]
    await db.execute("TRUNCATE candles_1m")
    assert await rollups(db) == []


@pytest.fixture
async def fresh_url():  # type: ignore[no-untyped-def]
    name = f"volspike_rollup_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_minutes_stored_before_the_migration_are_rolled_up_by_it(fresh_url: str) -> None:
    await migrations.ensure_database(fresh_url)
    conn = await asyncpg.connect(fresh_url)
    try:
        await conn.execute(migrations.CREATE_TABLE)
        for m in migrations.load_migrations():
            if m.version < 16:
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(migrations.RECORD, m.version, m.name)
        start = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)
        minutes = synthetic_minutes(start, 3 * 60 + 7)
        await ensure_partitions(conn, date(2024, 3, 1), date(2024, 3, 2))
        await conn.copy_records_to_table(
            "candles_1m",
            records=[
                (
                    k.symbol,
                    datetime.fromtimestamp(k.open_time_ms / 1000, UTC),
                    k.open,
                    k.high,
                    k.low,
                    k.close,
                    k.volume,
                    k.quote_volume,
                    k.trades,
                    k.taker_buy_volume,
                    k.taker_buy_quote,
                )
                for k in minutes
            ],
        )
        assert 16 in await migrations.migrate(fresh_url)
        assert close_enough(await rollups(conn), by_hand(minutes, HOUR))
    finally:
        await conn.close()
