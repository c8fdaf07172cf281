"""Who receives an hour's SPIKE rows (the public one and the crossings of own thresholds), and its
updates: the recipients query against real PostgreSQL, with the rows an hour's climb records."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis

from bot.delivery.recipients import insert_deliveries
from core.alerts import Alert, AlertType, Level
from core.redis_names import RedisNames
from db import alert_feed, alert_history, deliveries
from db import alerts as db_alerts
from db.publisher import AlertPublisher
from tests.delivery_harness import add_alert, add_user

HOUR = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PREVIOUS = 6e6


def at(minute: float) -> datetime:
    return HOUR + timedelta(minutes=minute)


async def climb(db: asyncpg.Pool) -> dict[str, Alert]:
    """The rows ingest records for an hour that builds up to ~7.4x: the public SPIKE, then a
    crossing each time the hour stands at a higher preset multiple or volume."""
    rows: dict[str, Alert] = {}
    for name, minute, current, level in (
        ("public", 5, 18.4e6, None),
        ("4x", 14, 24.1e6, Level(4.0, 10e6)),
        ("25M", 15, 25.2e6, Level(4.0, 25e6)),
        ("5x", 22, 30.1e6, Level(5.0, 25e6)),
        ("7x", 41, 42.2e6, Level(7.0, 25e6)),
    ):
        rows[name] = await add_alert(
            db, at(minute), current=current, previous=PREVIOUS, ratio=current / PREVIOUS, level=level
        )
    return rows


async def fan_out(db: asyncpg.Pool, alert: Alert, now: datetime | None = None) -> set[int]:
    assert alert.id is not None
    async with db.acquire() as conn:
        await insert_deliveries(conn, alert.id, now or alert.detected_at)
    rows = await db.fetch("SELECT chat_id FROM deliveries WHERE alert_id = $1", alert.id)
    return {r["chat_id"] for r in rows}


async def spikes_of(db: asyncpg.Pool) -> dict[int, list[int]]:
    rows = await db.fetch(
        "SELECT d.chat_id, d.alert_id FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
        "WHERE a.alert_type = 'SPIKE' ORDER BY d.chat_id, d.alert_id"
    )
    got: dict[int, list[int]] = {}
    for r in rows:
        got.setdefault(r["chat_id"], []).append(r["alert_id"])
    return got


async def test_each_user_gets_the_first_row_of_the_hour_at_or_above_their_own_thresholds(db: asyncpg.Pool):
    await add_user(db, 1, tier="free")
    await add_user(db, 2, tier="pro", spike_multiple=5.0)
    await add_user(db, 3, tier="elite", min_quote_volume=25e6)
    await add_user(db, 4, tier="elite", spike_multiple=5.0, min_quote_volume=25e6)
    await add_user(db, 5, tier="pro", spike_multiple=4.0, min_quote_volume=10e6)
    await add_user(db, 6, tier="elite", spike_multiple=10.0)  # the hour never gets there
    await add_user(db, 7, tier="free", spike_multiple=5.0)  # left over from a paid period: ignored
    await add_user(db, 8, tier="pro")  # the defaults
    await db.execute("INSERT INTO chats (id, kind, tier, connected_by) VALUES (-100, 'group', 'pro', 1)")
    rows = await climb(db)
    got = {name: await fan_out(db, row) for name, row in rows.items()}
    assert got == {
        "public": {1, 7, 8, -100},
        "4x": {5},
        "25M": {3},
        "5x": {2, 4},
        "7x": set(),
    }
    # one SPIKE per chat and symbol-hour, each with the figures of its own moment
    assert await spikes_of(db) == {
        -100: [rows["public"].id],
        1: [rows["public"].id],
        2: [rows["5x"].id],
        3: [rows["25M"].id],
        4: [rows["5x"].id],
        5: [rows["4x"].id],
        7: [rows["public"].id],
        8: [rows["public"].id],
    }
    # fanned out again (a crash, a second worker) or out of order: the same, nothing twice
    for row in reversed(rows.values()):
        await fan_out(db, row)
    assert len(await spikes_of(db)) == 8 and await db.fetchval("SELECT count(*) FROM deliveries") == 8


async def test_a_user_who_changes_thresholds_mid_hour_gets_no_second_spike(db: asyncpg.Pool):
    await add_user(db, 2, tier="pro", spike_multiple=5.0)
    await add_user(db, 3, tier="pro", spike_multiple=7.0)
    rows = await climb(db)
    for name in ("public", "4x", "25M", "5x"):
        await fan_out(db, rows[name])
    # user 2 moves up to 7x after their 5x SPIKE, user 3 down to 4x after the 4x moment passed
    await db.execute("UPDATE user_settings SET spike_multiple = 7.0 WHERE user_id = 2")
    await db.execute("UPDATE user_settings SET spike_multiple = 4.0 WHERE user_id = 3")
    assert await fan_out(db, rows["7x"]) == set()
    assert await spikes_of(db) == {2: [rows["5x"].id]}
    # the key holds in PostgreSQL whatever the query decides: a second SPIKE row of the hour
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(
            "INSERT INTO deliveries (alert_id, chat_id, due_at, spike_symbol, spike_hour) "
            "VALUES ($1, 2, now(), 'BTCUSDT', $2)",
            rows["7x"].id,
            HOUR,
        )
    # another symbol's hour is another SPIKE
    other = await add_alert(db, at(42), symbol="ETHUSDT", asset="ETH", ratio=7.5, current=45e6)
    assert await fan_out(db, other) == {2, 3}


async def test_half_and_full_updates_follow_each_users_own_spike(db: asyncpg.Pool):
    await add_user(db, 1, tier="elite")  # SPIKE at minute 5: HALF and FULL
    await add_user(db, 2, tier="elite", min_quote_volume=25e6)  # minute 15: HALF and FULL
    await add_user(db, 3, tier="elite", spike_multiple=5.0)  # minute 22: FULL only
    await add_user(db, 4, tier="elite", spike_multiple=7.0, min_quote_volume=50e6)  # minute 56: neither
    await add_user(db, 5, tier="elite", spike_multiple=10.0)  # no SPIKE: neither
    await add_user(db, 6, tier="pro", min_quote_volume=25e6)  # pro: no updates
    rows = await climb(db)
    late = await add_alert(db, at(56), current=50.4e6, previous=PREVIOUS, ratio=8.4, level=Level(7.0, 50e6))
    for row in (*rows.values(), late):
        await fan_out(db, row)
    await db.execute("UPDATE deliveries SET status = 'sent'")
    await db.execute("UPDATE user_settings SET spike_multiple = 3.0 WHERE user_id = 5")  # changes: no door
    half = await add_alert(db, at(30), alert_type=AlertType.HALF_UPDATE, ratio=5.4, current=32.4e6)
    assert await fan_out(db, half) == {1, 2}
    close = HOUR + timedelta(hours=1, seconds=3)
    full = await add_alert(db, close, alert_type=AlertType.FULL_UPDATE, ratio=7.6, current=45.6e6)
    # the FULL row's hour is the hour it closes
    await db.execute("UPDATE alerts SET hour_ts = $2 WHERE id = $1", full.id, HOUR)
    assert await fan_out(db, full, close) == {1, 2, 3}


async def test_crossings_stay_out_of_the_public_feed_history_and_lookups(db: asyncpg.Pool):
    rows = await climb(db)
    now = HOUR + timedelta(hours=1)
    types = [t.value for t in AlertType]
    assert [a.id for a in await alert_feed.feed(db, visible_until=now, limit=50, types=types)] == [
        rows["public"].id
    ]
    assert [a.id for a in await db_alerts.latest_alerts(db, 50)] == [rows["public"].id]
    recent = await alert_history.recent(db, visible_until=now, limit=50, types=types)
    assert [r["id"] for r in recent] == [rows["public"].id]
    markers = await alert_feed.markers(db, "BTCUSDT", HOUR, now, visible_until=now, types=types)
    assert len(markers) == 1
    assert await db_alerts.find_id(db, "BTCUSDT", HOUR, "SPIKE") == rows["public"].id
    crossing = await db_alerts.get_alert(db, rows["5x"].id)  # type: ignore[arg-type]
    assert crossing is not None and crossing.level == Level(5.0, 25e6)
    # a crossing is unique per grade, beside the public row of the same symbol-hour-type
    assert await db_alerts.insert_alert(db, crossing) is None
    assert await db_alerts.insert_alert(db, replace(crossing, level=None)) is None
    assert await db_alerts.insert_alert(db, replace(crossing, level=Level(5.0, 50e6))) is not None


async def test_a_crossing_goes_to_the_stream_for_delivery_but_not_to_the_live_feed(
    db: asyncpg.Pool, redis: Redis, names: RedisNames
) -> None:
    publisher = AlertPublisher(db, redis, names)
    pubsub = redis.pubsub()
    await pubsub.subscribe(names.alerts_channel)
    try:
        await pubsub.get_message(timeout=1.0)  # the subscription's confirmation
        base = Alert("BTCUSDT", "BTC", AlertType.SPIKE, HOUR, at(5), 18.4e6, PREVIOUS, 3.07, 97_000.0, 0.0001)
        public = await publisher.emit(base)
        crossing = await publisher.emit(
            replace(base, detected_at=at(22), current_volume=30.1e6, ratio=5.02, level=Level(5.0, 25e6))
        )
        assert public is not None and crossing is not None
        entries = [orjson.loads(f[b"alert"]) for _, f in await redis.xrange(names.alerts_stream)]
        assert [(e["id"], e.get("level")) for e in entries] == [
            (public.id, None),
            (crossing.id, {"multiple": 5.0, "minVolume": 25e6}),
        ]
        live = []
        while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)) is not None:
            live.append(orjson.loads(message["data"])["id"])
        assert live == [public.id]
    finally:
        await pubsub.aclose()


async def test_an_update_speaks_of_the_users_own_spike(db: asyncpg.Pool) -> None:
    await add_user(db, 1, tier="elite")
    await add_user(db, 3, tier="elite", spike_multiple=5.0)
    rows = await climb(db)
    for row in rows.values():
        await fan_out(db, row)
    await db.execute("UPDATE deliveries SET status = 'sent'")
    close = HOUR + timedelta(hours=1, seconds=3)
    full = await add_alert(db, close, alert_type=AlertType.FULL_UPDATE, ratio=7.6, current=45.6e6)
    await db.execute("UPDATE alerts SET hour_ts = $2 WHERE id = $1", full.id, HOUR)
    assert await fan_out(db, full, close) == {1, 3}
    async with db.acquire() as conn:
        claimed = await deliveries.claim_due(conn, close, 10, max_age=timedelta(hours=1), quiet_priorities=[])
    spikes = {r["chat_id"]: (r["spike_at"], r["spike_ratio"]) for r in claimed}
    assert spikes == {1: (at(5), rows["public"].ratio), 3: (at(22), rows["5x"].ratio)}
