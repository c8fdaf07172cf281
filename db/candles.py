"""Candle queries: the 1m upsert used by ingest, the stored minutes it seeds the detector with,
higher timeframes derived in SQL (`candle_bins`, migration 016), gap helpers."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from db.pool import PG_UNAVAILABLE as PG_UNAVAILABLE  # re-exported: writers import it here

Conn = asyncpg.Connection | PoolConnectionProxy
Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

# Any PostgreSQL failure, availability or not (a writer retries the first kind forever).
PG_ERRORS: tuple[type[Exception], ...] = (*PG_UNAVAILABLE, asyncpg.PostgresError)

TIMEFRAMES: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}

COLUMNS = (
    "symbol",
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote",
)

STAGING = "candles_1m_staging"

# Per connection, emptied at every commit: the COPY target of one batch.
CREATE_STAGING = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING}
    (LIKE candles_1m INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""

UPSERT_FROM_STAGING = f"""
INSERT INTO candles_1m ({", ".join(COLUMNS)})
SELECT {", ".join(COLUMNS)} FROM {STAGING}
ON CONFLICT (symbol, open_time) DO UPDATE SET
    open = EXCLUDED.open,
    high = EXCLUDED.high,
    low = EXCLUDED.low,
    close = EXCLUDED.close,
    volume = EXCLUDED.volume,
    quote_volume = EXCLUDED.quote_volume,
    trades = EXCLUDED.trades,
    taker_buy_volume = EXCLUDED.taker_buy_volume,
    taker_buy_quote = EXCLUDED.taker_buy_quote
WHERE (candles_1m.open, candles_1m.high, candles_1m.low, candles_1m.close, candles_1m.volume,
       candles_1m.quote_volume, candles_1m.trades, candles_1m.taker_buy_volume, candles_1m.taker_buy_quote)
      IS DISTINCT FROM
      (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume,
       EXCLUDED.quote_volume, EXCLUDED.trades, EXCLUDED.taker_buy_volume, EXCLUDED.taker_buy_quote)
"""

# Candles are re-derivable (the backfill refetches any minute `missing_minutes` reports), so a
# batch need not wait for its WAL flush: a PostgreSQL crash loses at most the last fraction of
# a second of candle commits, never the database's consistency.
ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"

# date_bin's origin: a UTC midnight, so 4h and 1d buckets start at 00:00 UTC like Binance's.
ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"

FETCH_1M = """
SELECT open_time AS bucket, open, high, low, close, volume, quote_volume, trades::bigint AS trades,
       taker_buy_volume, taker_buy_quote
FROM candles_1m
WHERE symbol = $1 AND open_time >= $2 AND open_time < $3
ORDER BY open_time DESC
LIMIT $4
"""

# The hourly roll-ups as they are (1h bars).
FETCH_1H = f"""
SELECT open_time AS bucket, open, high, low, close, volume, quote_volume, trades, taker_buy_volume,
       taker_buy_quote
FROM candles_1h
WHERE symbol = $1 AND open_time >= date_bin(interval '1 hour', $2::timestamptz, {ORIGIN}) AND open_time < $3
ORDER BY open_time DESC
LIMIT $4
"""

# 5m/15m from minutes, 4h/1d from the hourly roll-ups (whole hours divide 4h and 1d from
# midnight UTC); both through `candle_bins`, the one aggregation rule (migration 016).


def _binned(source: str) -> str:
    return f"""
SELECT bucket, open, high, low, close, volume, quote_volume, trades, taker_buy_volume, taker_buy_quote
FROM candle_bins('{source}', $2::interval, ARRAY[$1::text],
                 ARRAY[date_bin($2::interval, $3::timestamptz, {ORIGIN})], ARRAY[$4::timestamptz])
ORDER BY bucket DESC
LIMIT $5
"""


FETCH_FROM_MINUTES = _binned("candles_1m")
FETCH_FROM_HOURS = _binned("candles_1h")

# Every stored minute of every symbol in a range: what ingest seeds the detector with at start.
FETCH_1M_ALL = """
SELECT open_time AS bucket, open, high, low, close, volume, quote_volume,
       trades::bigint AS trades, taker_buy_volume, taker_buy_quote, symbol
FROM candles_1m
WHERE open_time >= $1 AND open_time < $2
ORDER BY symbol, open_time
"""

# The stored minutes of an alert's own symbol and hour, keyed by the alert alone: the symbol and
# the hour come from the alert row, so a chart asked for by alert id cannot show another symbol.
ALERT_HOUR_MINUTES = """
SELECT c.open_time AS bucket, c.open, c.high, c.low, c.close, c.volume, c.quote_volume,
       c.trades::bigint AS trades, c.taker_buy_volume, c.taker_buy_quote
FROM alerts a
JOIN candles_1m c
  ON c.symbol = a.symbol AND c.open_time >= a.hour_ts AND c.open_time < a.hour_ts + interval '1 hour'
WHERE a.id = $1
ORDER BY c.open_time
"""

LATEST_OPEN_TIME = "SELECT max(open_time) FROM candles_1m WHERE symbol = $1"

MISSING_MINUTES = """
SELECT m
FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 minute', interval '1 minute') AS m
WHERE NOT EXISTS (SELECT 1 FROM candles_1m c WHERE c.symbol = $1 AND c.open_time = m)
ORDER BY m
"""


@dataclass(frozen=True, slots=True)
class Candle:
    open_time: datetime  # start of the bucket (UTC)
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    taker_buy_volume: float
    taker_buy_quote: float


def _candle(row: asyncpg.Record) -> Candle:
    """From a row whose first columns are Candle's fields in order (bucket first)."""
    return Candle(*row[:10])


# Does any row of the batch's symbols exist in the batch's time range? Index probes on the key.
ANY_STORED = """
SELECT EXISTS (
    SELECT 1 FROM candles_1m
    WHERE symbol = ANY($1::text[]) AND open_time >= $2 AND open_time <= $3
)
"""


COPY_SLICE = 250  # rows encoded between two yields to the event loop


async def _paced(records: Sequence[tuple[object, ...]]) -> AsyncIterator[tuple[object, ...]]:
    for start in range(0, len(records), COPY_SLICE):
        for record in records[start : start + COPY_SLICE]:
            yield record
        await asyncio.sleep(0)


def _copy_source(
    records: Sequence[tuple[object, ...]],
) -> Sequence[tuple[object, ...]] | AsyncIterator[tuple[object, ...]]:
    """What to hand COPY: a large batch as an async iterator yielding to the event loop every
    `COPY_SLICE` rows (asyncpg encodes a plain list in one go, holding the loop for
    milliseconds); a fresh one per COPY, since an iterator is consumed once."""
    return _paced(records) if len(records) > COPY_SLICE else records


async def upsert_candles(conn: Conn, records: Sequence[tuple[object, ...]]) -> None:
    """Store `records` (in COLUMNS order) so that a replayed or backfilled candle never duplicates.

    Fast path: when none of the batch's symbols has a row in the batch's time range (live
    minutes, first backfills), COPY straight into candles_1m (about twice the rate of an
    upsert). Otherwise COPY into staging and upsert; a replayed candle identical to the stored
    one is left alone. A concurrent writer inserting the same key between the check and the
    COPY makes the COPY fail with a unique violation; the batch then takes the upsert path.
    Batches larger than `COPY_SLICE` are encoded in slices, so other tasks (the websocket
    readers, an alert's INSERT) run in between."""
    symbols = sorted({str(r[0]) for r in records})
    times = [r[1] for r in records]
    if not await conn.fetchval(ANY_STORED, symbols, min(times), max(times)):  # type: ignore[type-var]
        try:
            async with conn.transaction():
                await conn.execute(ASYNC_COMMIT)
                await conn.copy_records_to_table("candles_1m", records=_copy_source(records), columns=COLUMNS)
            return
        except asyncpg.UniqueViolationError:
            pass
    async with conn.transaction():
        await conn.execute(ASYNC_COMMIT)
        await conn.execute(CREATE_STAGING)
        await conn.copy_records_to_table(STAGING, records=_copy_source(records), columns=COLUMNS)
        await conn.execute(UPSERT_FROM_STAGING)


def _query(
    symbol: str, timeframe: str, start: datetime, end: datetime, limit: int
) -> tuple[str, tuple[object, ...]]:
    step = TIMEFRAMES.get(timeframe)
    if step is None:
        raise ValueError(f"unknown timeframe {timeframe!r}; one of {', '.join(TIMEFRAMES)}")
    if timeframe == "1m":
        return FETCH_1M, (symbol, start, end, limit)
    if timeframe == "1h":
        return FETCH_1H, (symbol, start, end, limit)
    sql = FETCH_FROM_HOURS if step >= timedelta(hours=1) else FETCH_FROM_MINUTES
    return sql, (symbol, step, start, end, limit)


async def fetch_candles(
    conn: Executor, symbol: str, timeframe: str, start: datetime, end: datetime, limit: int
) -> list[Candle]:
    """Candles of `timeframe` (1m 5m 15m 1h 4h 1d) for `symbol`, oldest first.

    Buckets start at or after the bucket containing `start` and before `end`; when more than
    `limit` exist, the newest `limit` are returned (a chart asks for the bars ending at `end`).
    Higher timeframes are aggregated from closed 1m candles by `candle_bins` (open = first,
    close = last, high = max, low = min, volumes and trades summed): 5m and 15m from the
    minutes, 1h and up from the hourly roll-ups `candles_1h`, which a trigger keeps equal to
    their minutes. A bucket still in progress covers the minutes stored so far. An `end`
    inside an hour cuts 5m/15m at the minute but keeps the whole hour in 1h and up (they are
    made of whole hours). Unknown timeframe: ValueError.
    """
    sql, args = _query(symbol, timeframe, start, end, limit)
    if limit <= 0:
        return []
    return [_candle(row) for row in reversed(await conn.fetch(sql, *args))]


@dataclass(frozen=True, slots=True)
class Bars:
    """What a chart draws, as columns, oldest first: open times (unix seconds), open, high,
    low, close, quote volume."""

    t: list[int]
    o: list[float]
    h: list[float]
    l: list[float]  # noqa: E741 - the charts' name for low
    c: list[float]
    v: list[float]

    def since(self, first: int) -> Bars:
        """The bars opening at or after `first` (unix seconds)."""
        cut = bisect.bisect_left(self.t, first)
        return Bars(self.t[cut:], self.o[cut:], self.h[cut:], self.l[cut:], self.c[cut:], self.v[cut:])


def _as_columns(rows: str) -> str:
    """`rows` (one of the candle queries above) as six arrays, oldest first: PostgreSQL builds
    them, so 500 bars cost no Python object each."""
    columns = ", ".join(
        f"coalesce(array_agg({expr} ORDER BY bucket), '{{}}')"
        for expr in ("extract(epoch FROM bucket)::bigint", "open", "high", "low", "close", "quote_volume")
    )
    return f"SELECT {columns} FROM ({rows}) AS bars"


COLUMNS_OF = {sql: _as_columns(sql) for sql in (FETCH_1M, FETCH_1H, FETCH_FROM_MINUTES, FETCH_FROM_HOURS)}


async def fetch_bars(
    conn: Executor, symbol: str, timeframe: str, start: datetime, end: datetime, limit: int
) -> Bars:
    """The bars of `fetch_candles(...)` (same range, limit and rule) as columns."""
    sql, args = _query(symbol, timeframe, start, end, limit)
    if limit <= 0:
        return Bars([], [], [], [], [], [])
    row = await conn.fetchrow(COLUMNS_OF[sql], *args)
    assert row is not None  # an aggregate without GROUP BY always answers one row
    return Bars(*row)


async def stored_minutes(conn: Executor, start: datetime, end: datetime) -> dict[str, list[Candle]]:
    """Every stored 1m candle with open time in [start, end), by symbol, oldest first."""
    out: dict[str, list[Candle]] = {}
    for row in await conn.fetch(FETCH_1M_ALL, start, end):
        out.setdefault(row["symbol"], []).append(_candle(row))
    return out


async def alert_hour_minutes(conn: Executor, alert_id: int) -> list[Candle]:
    """The stored 1m candles of alert `alert_id`'s symbol and hour, oldest first (none for an
    unknown alert or an hour with no stored minute)."""
    return [_candle(row) for row in await conn.fetch(ALERT_HOUR_MINUTES, alert_id)]


async def latest_open_time(conn: Executor, symbol: str) -> datetime | None:
    """Open time of the newest stored 1m candle of `symbol` (None when there is none)."""
    latest: datetime | None = await conn.fetchval(LATEST_OPEN_TIME, symbol)
    return latest


async def missing_minutes(conn: Executor, symbol: str, start: datetime, end: datetime) -> list[datetime]:
    """Minute open times in [start, end) with no stored candle (start is floored to the minute)."""
    start = start.replace(second=0, microsecond=0)
    if end <= start:
        return []
    return [row["m"] for row in await conn.fetch(MISSING_MINUTES, symbol, start, end)]
