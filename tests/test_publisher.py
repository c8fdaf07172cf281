"""Alert publishing against real PostgreSQL and Redis, and the live market hash."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.alerts import Alert, AlertType
from core.redis_names import RedisNames
from db import alerts as db_alerts
from db.live_state import LiveState, read_market
from db.publisher import AlertPublisher
from ingest.detector import SpikeDetector, SymbolSnapshot
from ingest.parsers import Kline

HOUR = datetime(2026, 3, 2, 14, tzinfo=UTC)


def alert(symbol: str = "BTCUSDT", kind: AlertType = AlertType.SPIKE, minute: int = 7) -> Alert:
    return Alert(
        symbol=symbol,
        asset=symbol.removesuffix("USDT"),
        alert_type=kind,
        hour=HOUR,
        detected_at=HOUR + timedelta(minutes=minute, seconds=12, milliseconds=345),
        current_volume=5_000_000_000.0,
        previous_volume=1_500_000_000.0,
        ratio=3.3333,
        price=97123.4,
        funding_rate=0.0001,
    )


async def stream_alerts(redis: Redis, names: RedisNames) -> list[dict[str, object]]:
    entries = await redis.xrange(names.alerts_stream)
    return [orjson.loads(fields[b"alert"]) for _, fields in entries or []]


async def published_at(pool: asyncpg.Pool, alert_id: int) -> datetime | None:
    value: datetime | None = await pool.fetchval("SELECT published_at FROM alerts WHERE id = $1", alert_id)
    return value


async def test_emit_inserts_the_row_then_adds_it_to_the_stream(
    db: asyncpg.Pool, redis: Redis, names: RedisNames
) -> None:
    sent = await AlertPublisher(db, redis, names).emit(alert())
    assert sent is not None and sent.id is not None
    stored = await db_alerts.get_alert(db, sent.id)
    assert stored == sent
    assert await published_at(db, sent.id) is not None
    [entry] = await stream_alerts(redis, names)
    assert entry == sent.to_json_dict() and entry["id"] == sent.id
    assert str(entry["message"]).startswith("BTC hourly volume $5.00B (3.33× prev)")


async def test_emitting_the_same_alert_twice_gives_one_row_and_one_stream_entry(
    db: asyncpg.Pool, redis: Redis, names: RedisNames
) -> None:
    first = AlertPublisher(db, redis, names)
    second = AlertPublisher(db, redis, names)  # e.g. a restarted or second ingest process
    assert await first.emit(alert()) is not None
    assert await second.emit(alert()) is None
    assert await first.emit(alert()) is None
    assert await db.fetchval("SELECT count(*) FROM alerts") == 1
    assert len(await stream_alerts(redis, names)) == 1
    # another type in the same hour is a different alert
    assert await first.emit(alert(kind=AlertType.HALF_UPDATE, minute=30)) is not None
    assert [e["alertType"] for e in await stream_alerts(redis, names)] == ["SPIKE", "HALF_UPDATE"]


async def test_the_live_channel_gets_each_alert(db: asyncpg.Pool, redis: Redis, names: RedisNames) -> None:
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(names.alerts_channel)
        first = await pubsub.get_message(timeout=5)
        assert first is not None and first["type"] == "subscribe"
        sent = await AlertPublisher(db, redis, names).emit(alert())
        assert sent is not None
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None and orjson.loads(message["data"]) == sent.to_json_dict()
    finally:
        await pubsub.aclose()


async def test_with_redis_down_the_row_waits_and_republish_pending_publishes_it_once(
    db: asyncpg.Pool, redis: Redis, names: RedisNames
) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        down = AlertPublisher(db, dead, names)
        a = await down.emit(alert("BTCUSDT"))
        b = await down.emit(alert("ETHUSDT"))
        assert a is not None and b is not None and a.id is not None and b.id is not None
        assert await published_at(db, a.id) is None and await published_at(db, b.id) is None
        assert await db_alerts.count_unpublished(db) == 2
        assert await down.republish_pending() == 0  # still down: nothing lost, nothing marked
    finally:
        await dead.aclose()
    assert await stream_alerts(redis, names) == []

    back = AlertPublisher(db, redis, names)
    assert await back.republish_pending() == 2
    assert [e["id"] for e in await stream_alerts(redis, names)] == [a.id, b.id]  # id order
    assert await db_alerts.count_unpublished(db) == 0
    assert await back.republish_pending() == 0
    assert len(await stream_alerts(redis, names)) == 2


async def test_republish_runs_in_batches_until_nothing_is_left(
    db: asyncpg.Pool, redis: Redis, names: RedisNames
) -> None:
    for i in range(7):
        await db_alerts.insert_alert(db, alert(f"S{i}USDT"))
    assert await AlertPublisher(db, redis, names).republish_pending(batch=3) == 7
    assert [e["symbol"] for e in await stream_alerts(redis, names)] == [f"S{i}USDT" for i in range(7)]


async def test_with_postgres_down_emit_holds_the_alert_in_memory(redis: Redis, names: RedisNames) -> None:
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/none", min_size=0, timeout=1)
    try:
        publisher = AlertPublisher(dead, redis, names)
        assert await publisher.emit(alert()) is None
        assert publisher.held == 1
        with pytest.raises(OSError):
            await publisher.republish_pending()
        assert publisher.held == 1
    finally:
        await dead.close()
    assert await stream_alerts(redis, names) == []


async def test_the_alert_connection_survives_a_killed_backend_without_losing_an_alert(
    db: asyncpg.Pool, redis: Redis, names: RedisNames, database_url: str
) -> None:
    publisher = AlertPublisher(db, redis, names, database_url=database_url)
    try:
        await publisher.open()
        first = await publisher.emit(alert("BTCUSDT"))
        assert first is not None
        # The alert connection's backend dies (a PostgreSQL restart, an admin's kill).
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle' "
            "AND query LIKE '%INSERT INTO alerts (symbol%'"
        )
        assert killed == 1
        await asyncio.sleep(0.1)
        second = await publisher.emit(alert("ETHUSDT"))  # on a new alert connection
        assert second is not None and publisher.held == 0
        third = await publisher.emit(alert("SOLUSDT"))
        assert third is not None
    finally:
        await publisher.close()
    assert [e["symbol"] for e in await stream_alerts(redis, names)] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert await db.fetchval("SELECT count(*) FROM alerts WHERE published_at IS NOT NULL") == 3


async def test_with_postgres_down_the_alert_connection_holds_the_alert(
    db: asyncpg.Pool, redis: Redis, names: RedisNames
) -> None:
    publisher = AlertPublisher(db, redis, names, database_url="postgresql://postgres@127.0.0.1:1/none")
    try:
        await publisher.open()  # logged, not raised
        assert await publisher.emit(alert()) is None
        assert publisher.held == 1
    finally:
        await publisher.close()


async def test_alerts_in_the_database_restore_the_detector_after_a_restart(
    db: asyncpg.Pool, redis: Redis, names: RedisNames
) -> None:
    def k(open_ms: int, q: float) -> Kline:
        return Kline(
            "BTCUSDT", "1m", open_ms, open_ms + 59_999, 1, 1, 1, 1, q, q, 1, 0, 0, True, open_ms + 60_000
        )

    h0 = int(HOUR.timestamp() * 1000) - 3_600_000
    history = [k(h0 + m * 60_000, 100_000) for m in range(60)] + [k(h0 + 3_600_000, 20_000_000)]
    publisher = AlertPublisher(db, redis, names)
    first = SpikeDetector(3.0, 1_000_000)
    fired = [a for kl in history for a in first.on_kline(kl)]
    assert [a.alert_type for a in fired] == [AlertType.SPIKE]
    assert await publisher.emit(fired[0]) is not None

    restarted = SpikeDetector(3.0, 1_000_000)
    restarted.restore(await db_alerts.fired_since(db, HOUR - timedelta(hours=1)))
    restarted.seed("BTCUSDT", history)
    again = restarted.on_kline(k(h0 + 3_600_000 + 60_000, 1_000_000))
    assert again == []
    latest = await db_alerts.latest_alerts(db, 10, symbol="BTCUSDT")
    assert [a.alert_type for a in latest] == [AlertType.SPIKE]
    assert await db_alerts.latest_alerts(db, 10, symbol="ETHUSDT") == []


async def test_latest_alerts_are_newest_first_and_page_back(db: asyncpg.Pool) -> None:
    ids = [await db_alerts.insert_alert(db, alert(f"S{i}USDT", minute=i)) for i in range(5)]
    latest = await db_alerts.latest_alerts(db, 3)
    assert [a.id for a in latest] == ids[::-1][:3]
    older = await db_alerts.latest_alerts(db, 3, before_id=latest[-1].id)
    assert [a.id for a in older] == ids[::-1][3:]


# --- the live market hash ------------------------------------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def snapshot(symbol: str, current: float, price: float = 10.0) -> SymbolSnapshot:
    return SymbolSnapshot(symbol, 0, current, current / 4, 4.0, price, price, 0.0002, 123)


async def test_live_state_writes_changed_symbols_at_most_once_a_second(
    redis: Redis, names: RedisNames
) -> None:
    ticks = Ticks()
    live = LiveState(redis, names, monotonic=ticks)
    live.update(snapshot("BTCUSDT", 400.0))
    live.set_24h("BTCUSDT", -1.23456, 9e9)
    live.update(snapshot("ETHUSDT", 80.0))
    assert await live.flush() == 2
    market = await read_market(redis, names)
    assert market["BTCUSDT"] == {
        "symbol": "BTCUSDT",
        "price": 10.0,
        "change24h": -1.2346,
        "quoteVolume24h": 9e9,
        "hourVolume": 400.0,
        "prevHourVolume": 100.0,
        "ratio": 4.0,
        "fundingRate": 0.0002,
        "markPrice": 10.0,
        "updatedAt": 123,
    }
    live.update(snapshot("ETHUSDT", 90.0))
    ticks.now += 0.5
    assert await live.flush() == 0  # too soon
    ticks.now += 0.5
    assert await live.flush() == 1  # only ETH changed
    assert (await read_market(redis, names))["ETHUSDT"]["hourVolume"] == 90.0
    live.remove("ETHUSDT")
    ticks.now += 1
    assert await live.flush() == 0
    assert set(await read_market(redis, names)) == {"BTCUSDT"}


async def test_live_state_keeps_changes_when_redis_is_down(names: RedisNames) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        live = LiveState(dead, names)
        live.update(snapshot("BTCUSDT", 1.0))
        live.remove("ETHUSDT")
        with pytest.raises(RedisError):
            await live.flush()
        assert live.dirty == 2  # still to be written at the next flush
    finally:
        await dead.aclose()


async def test_live_state_run_loop_flushes_until_cancelled(redis: Redis, names: RedisNames) -> None:
    live = LiveState(redis, names, min_interval=0.05)
    task = asyncio.create_task(live.run())
    try:
        live.update(snapshot("XRPUSDT", 5.0))
        async with asyncio.timeout(5):
            while "XRPUSDT" not in await read_market(redis, names):  # noqa: ASYNC110 - polls Redis
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_row_that_cannot_be_published_is_dead_lettered_and_the_rest_go_on(
    db: asyncpg.Pool, redis: Redis, names: RedisNames, caplog: pytest.LogCaptureFixture
) -> None:
    """The rows the attack run's POSTs left before the endpoint checked them: an hour of year 1
    (stored as -infinity), Infinity and NaN figures. The republisher failed on the first every 2 s
    and took ingest down; now each is set aside with its reason and the good row after it goes out."""
    await db.execute(
        """
        INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume,
                            previous_volume, volume_ratio, price, funding_rate, simulated)
        VALUES ('BTCUSDT', 'BTC', 'SPIKE', '-infinity', '-infinity', 5e9, 1.5e9, 3.33, 97000, 0.0001, false),
               ('ETHUSDT', 'ETH', 'SPIKE', '2026-03-02T14:00Z', '2026-03-02T14:07Z',
                'Infinity', 1.5e9, 'Infinity', 3000, 0.0001, false),
               ('SOLUSDT', 'SOL', 'SPIKE', '2026-03-02T14:00Z', '2026-03-02T14:07Z',
                5e9, 'NaN', 'NaN', 150, 0.0001, false)
        """
    )
    good = await AlertPublisher(db, redis, names).save(alert("XRPUSDT"))
    assert good is not None
    publisher = AlertPublisher(db, redis, names)
    runner = asyncio.create_task(publisher.run(interval=0.05))
    try:
        for _ in range(200):
            if await published_at(db, good.id or 0) is not None:
                break
            await asyncio.sleep(0.05)
        assert not runner.done()
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert [entry["symbol"] for entry in await stream_alerts(redis, names)] == ["XRPUSDT"]
    dead = await db.fetch(
        "SELECT symbol, publish_error, fanout_failed_at FROM alerts WHERE publish_failed_at IS NOT NULL"
        " ORDER BY id"
    )
    assert [row["symbol"] for row in dead] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert all(row["publish_error"] and row["fanout_failed_at"] is not None for row in dead)
    assert await db_alerts.count_unpublished(db) == 0
    logged = [r for r in caplog.records if r.getMessage().startswith("alert dead-lettered")]
    assert len(logged) == 3


async def test_a_full_update_detected_after_its_hour_closed_is_published_not_dead_lettered(
    db: asyncpg.Pool, redis: Redis, names: RedisNames
) -> None:
    """Ingest's own FULL_UPDATE waits for the hour's missing minutes (a gap backfilled after the
    close), so its detection time can be minutes after the hour: that row is good and goes out."""
    late = alert(kind=AlertType.FULL_UPDATE, minute=71)
    sent = await AlertPublisher(db, redis, names).emit(late)
    assert sent is not None and sent.id is not None
    assert await published_at(db, sent.id) is not None
    assert [entry["alertType"] for entry in await stream_alerts(redis, names)] == ["FULL_UPDATE"]
    assert await db.fetchval("SELECT count(*) FROM alerts WHERE publish_failed_at IS NOT NULL") == 0
