"""Closed 1m candles into real PostgreSQL (COPY + upsert), higher timeframes, gap helpers."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from core.settings import Settings
from db.candles import (
    PG_UNAVAILABLE,
    Bars,
    Candle,
    fetch_bars,
    fetch_candles,
    latest_open_time,
    missing_minutes,
)
from db.partitions import list_partitions
from db.pool import create_pool
from ingest.candles import CandleWriter
from ingest.parsers import Kline

MIN_MS = 60_000
DAY0 = datetime(2021, 7, 22, tzinfo=UTC)


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def kline(symbol: str, open_ms: int, close: float = 1.0, q: float = 10.0, *, closed: bool = True) -> Kline:
    high, low, volume = close + 1, close - 1, q / close
    return Kline(
        symbol,
        "1m",
        open_ms,
        open_ms + 59_999,
        close,
        high,
        low,
        close,
        volume,
        q,
        7,
        1.0,
        2.0,
        closed,
        open_ms + 60_000,
    )


async def count(pool: asyncpg.Pool, symbol: str | None = None) -> int:
    if symbol is None:
        return await pool.fetchval("SELECT count(*) FROM candles_1m")  # type: ignore[no-any-return]
    return await pool.fetchval("SELECT count(*) FROM candles_1m WHERE symbol = $1", symbol)  # type: ignore[no-any-return]


async def test_closed_candles_are_copied_and_upserted(db: asyncpg.Pool) -> None:
    writer = CandleWriter(db)
    start = ms(DAY0 + timedelta(hours=5))
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for m in range(10):
            writer.add(kline(symbol, start + m * MIN_MS, close=100 + m, q=1000 + m))
    writer.add(kline("BTCUSDT", start + 10 * MIN_MS, closed=False))  # open minute: not stored
    writer.add(Kline("BTCUSDT", "1h", start, start + 3_599_999, 1, 1, 1, 1, 1, 1, 1, 1, 1, True, start))
    assert writer.pending == 20
    assert await writer.flush() == 20
    assert writer.pending == 0 and await writer.flush() == 0
    row = await db.fetchrow(
        "SELECT * FROM candles_1m WHERE symbol = 'ETHUSDT' AND open_time = $1",
        DAY0 + timedelta(hours=5, minutes=3),
    )
    assert row is not None
    assert dict(row) == {
        "symbol": "ETHUSDT",
        "open_time": DAY0 + timedelta(hours=5, minutes=3),
        "open": 103.0,
        "high": 104.0,
        "low": 102.0,
        "close": 103.0,
        "volume": pytest.approx(1003 / 103),
        "quote_volume": 1003.0,
        "trades": 7,
        "taker_buy_volume": 1.0,
        "taker_buy_quote": 2.0,
    }


async def test_replayed_and_duplicated_candles_never_duplicate_and_the_last_write_wins(
    db: asyncpg.Pool,
) -> None:
    writer = CandleWriter(db)
    start = ms(DAY0)
    for m in range(5):
        writer.add(kline("BTCUSDT", start + m * MIN_MS, close=1.0))
        writer.add(kline("BTCUSDT", start + m * MIN_MS, close=2.0))  # same batch: last one wins
    assert await writer.flush() == 5
    for m in range(5):  # replayed later, e.g. by a backfill
        writer.add(kline("BTCUSDT", start + m * MIN_MS, close=3.0))
    assert await writer.flush() == 5
    assert await count(db) == 5
    assert await db.fetchval("SELECT array_agg(DISTINCT close) FROM candles_1m") == [3.0]


async def test_daily_partitions_are_created_on_demand(db: asyncpg.Pool) -> None:
    days = [datetime(2019, 1, d, 23, 59, tzinfo=UTC) for d in (3, 5)]
    assert not {"candles_1m_20190103", "candles_1m_20190105"} & set(await list_partitions(db))
    writer = CandleWriter(db)
    for day in days:
        writer.add(kline("BTCUSDT", ms(day)))
    assert await writer.flush() == 2
    assert {"candles_1m_20190103", "candles_1m_20190104", "candles_1m_20190105"} <= set(
        await list_partitions(db)
    )
    assert await count(db) == 2


async def test_run_flushes_on_size_and_time_and_writes_what_it_holds_when_cancelled(db: asyncpg.Pool) -> None:
    writer = CandleWriter(db, max_rows=50, max_delay=0.2)
    task = asyncio.create_task(writer.run())
    start = ms(DAY0 + timedelta(days=1))
    try:
        for m in range(120):
            writer.add(kline("SOLUSDT", start + m * MIN_MS))
        async with asyncio.timeout(10):
            while await count(db) < 120:  # noqa: ASYNC110 - polls the database, no event to await
                await asyncio.sleep(0.02)
        writer.add(kline("SOLUSDT", start + 120 * MIN_MS))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await count(db) == 121


class PgProxy:
    """A TCP proxy in front of PostgreSQL that the test can stop (an outage) and start again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._tasks.difference_update(pumps)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


async def test_rows_survive_a_postgres_outage_and_are_written_when_it_is_back(
    db: asyncpg.Pool, settings: Settings
) -> None:
    parts = urlsplit(settings.database_url)
    proxy = PgProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    url = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}"))
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        writer = CandleWriter(pool, max_delay=0.05)
        start = ms(DAY0 + timedelta(days=2))
        writer.add(kline("ADAUSDT", start))
        assert await writer.flush() == 1
        await proxy.stop()  # PostgreSQL unreachable
        for m in range(1, 6):
            writer.add(kline("ADAUSDT", start + m * MIN_MS))
        with pytest.raises(PG_UNAVAILABLE):
            await writer.flush()
        assert writer.pending == 5
        writer.add(kline("ADAUSDT", start + 5 * MIN_MS, close=9.0))  # newer data while down wins
        task = asyncio.create_task(writer.run())
        try:
            await proxy.start()  # back, on the same port
            async with asyncio.timeout(20):
                while writer.pending or await count(db, "ADAUSDT") < 6:  # noqa: ASYNC110 - polls the db
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert (
            await db.fetchval(
                "SELECT close FROM candles_1m WHERE symbol = 'ADAUSDT' AND open_time = $1",
                DAY0 + timedelta(days=2, minutes=5),
            )
            == 9.0
        )
    finally:
        await pool.close()
        await proxy.stop()


async def test_the_buffer_is_capped_and_drops_the_oldest_rows() -> None:
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/none", min_size=0, timeout=1)
    try:
        writer = CandleWriter(dead, max_rows=2, max_buffered=4)
        for m in range(6):
            writer.add(kline("BTCUSDT", ms(DAY0) + m * MIN_MS))
        assert writer.pending == 4 and writer.dropped == 2
        with pytest.raises(PG_UNAVAILABLE):
            await writer.flush()
        assert writer.pending == 4
    finally:
        await dead.close()


# --- higher timeframes and gap helpers ------------------------------------------------------


def synthetic_minutes(start: datetime, n: int, seed: int = 7) -> list[Kline]:
    rng = random.Random(seed)
    out = []
    price = 100.0
    for i in range(n):
        o = price
        c = o * (1 + rng.uniform(-0.01, 0.01))
        h, low = max(o, c) * (1 + rng.uniform(0, 0.005)), min(o, c) * (1 - rng.uniform(0, 0.005))
        v = rng.uniform(1, 100)
        open_ms = ms(start) + i * MIN_MS
        n = rng.randint(1, 50)
        out.append(
            Kline(
                "XRPUSDT",
                "1m",
                open_ms,
                open_ms + 59_999,
                o,
                h,
                low,
                c,
                v,
                v * c,
                n,
                v / 2,
                v * c / 2,
                True,
                open_ms + MIN_MS,
            )
        )
        price = c
    return out


def by_hand(minutes: list[Kline], step: timedelta) -> list[Candle]:
    buckets: dict[int, list[Kline]] = {}
    size = int(step.total_seconds() * 1000)
    for k in minutes:
        buckets.setdefault(k.open_time_ms - k.open_time_ms % size, []).append(k)
    return [
        Candle(
            datetime.fromtimestamp(t / 1000, UTC),
            ks[0].open,
            max(k.high for k in ks),
            min(k.low for k in ks),
            ks[-1].close,
            sum(k.volume for k in ks),
            sum(k.quote_volume for k in ks),
            sum(k.trades for k in ks),
            sum(k.taker_buy_volume for k in ks),
            sum(k.taker_buy_quote for k in ks),
        )
        for t, ks in sorted(buckets.items())
    ]


def close_enough(got: list[Candle], want: list[Candle]) -> bool:
    assert [c.open_time for c in got] == [c.open_time for c in want]
    for g, w in zip(got, want, strict=True):
        assert (g.open, g.high, g.low, g.close, g.trades) == (w.open, w.high, w.low, w.close, w.trades)
        for field in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote"):
            assert getattr(g, field) == pytest.approx(getattr(w, field), rel=1e-12)
    return True


@pytest.mark.parametrize(
    ("timeframe", "step"),
    [
        ("1m", timedelta(minutes=1)),
        ("5m", timedelta(minutes=5)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("4h", timedelta(hours=4)),
        ("1d", timedelta(days=1)),
    ],
)
async def test_higher_timeframes_match_a_hand_aggregation(
    db: asyncpg.Pool, timeframe: str, step: timedelta
) -> None:
    start = DAY0 + timedelta(hours=21, minutes=13)  # mid-bucket for every timeframe
    minutes = synthetic_minutes(start, 2 * 1440)
    writer = CandleWriter(db)
    for k in minutes:
        writer.add(k)
    await writer.flush()
    end = start + timedelta(days=3)
    want = by_hand(minutes, step)
    assert close_enough(await fetch_candles(db, "XRPUSDT", timeframe, start, end, 10_000), want)
    # the newest `limit` buckets, oldest first
    newest = await fetch_candles(db, "XRPUSDT", timeframe, start, end, 3)
    assert close_enough(newest, want[-3:])
    assert await fetch_candles(db, "BTCUSDT", timeframe, start, end, 10) == []
    # the charts' columns are the same bars
    columns = [(int(c.open_time.timestamp()), c.open, c.high, c.low, c.close, c.quote_volume) for c in newest]
    assert await fetch_bars(db, "XRPUSDT", timeframe, start, end, 3) == Bars(
        *map(list, zip(*columns, strict=True))
    )
    assert await fetch_bars(db, "BTCUSDT", timeframe, start, end, 10) == Bars([], [], [], [], [], [])


async def test_unknown_timeframe_is_refused(db: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="unknown timeframe"):
        await fetch_candles(db, "XRPUSDT", "3m", DAY0, DAY0 + timedelta(days=1), 10)


async def test_gap_helpers_find_the_latest_and_the_missing_minutes(db: asyncpg.Pool) -> None:
    assert await latest_open_time(db, "XRPUSDT") is None
    minutes = [k for i, k in enumerate(synthetic_minutes(DAY0, 30)) if i not in (0, 7, 8, 29)]
    writer = CandleWriter(db)
    for k in minutes:
        writer.add(k)
    await writer.flush()
    assert await latest_open_time(db, "XRPUSDT") == DAY0 + timedelta(minutes=28)
    gaps = await missing_minutes(db, "XRPUSDT", DAY0 + timedelta(seconds=30), DAY0 + timedelta(minutes=31))
    assert gaps == [DAY0 + timedelta(minutes=m) for m in (0, 7, 8, 29, 30)]
