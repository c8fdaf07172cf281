"""The one recipients query: who gets an alert, with which priority and due time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import asyncpg

from bot.delivery.recipients import fan_out, insert_deliveries
from core.alerts import AlertType
from tests.delivery_harness import add_alert, add_user

NOW = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)


async def recipients(db: asyncpg.Pool, alert_id: int, now: datetime = NOW) -> dict[int, tuple[int, datetime]]:
    async with db.acquire() as conn:
        await insert_deliveries(conn, alert_id, now)
    rows = await db.fetch("SELECT chat_id, priority, due_at FROM deliveries WHERE alert_id = $1", alert_id)
    return {row["chat_id"]: (row["priority"], row["due_at"]) for row in rows}


async def test_priority_and_due_time_follow_the_effective_tier(db: asyncpg.Pool):
    await add_user(db, 1, tier="elite")
    await add_user(db, 2, tier="pro")
    await add_user(db, 3, tier="free")
    await add_user(db, 4, tier="elite", expires=NOW - timedelta(seconds=1))  # expired: free
    await add_user(db, 5, tier="pro", expires=NOW + timedelta(days=3))
    alert = await add_alert(db, NOW)
    got = await recipients(db, alert.id)  # type: ignore[arg-type]
    assert got == {
        1: (0, NOW),
        2: (1, NOW + timedelta(minutes=5)),
        3: (2, NOW + timedelta(minutes=15)),
        4: (2, NOW + timedelta(minutes=15)),
        5: (1, NOW + timedelta(minutes=5)),
    }


async def test_banned_blocked_and_paused_users_are_skipped(db: asyncpg.Pool):
    await add_user(db, 1)
    await add_user(db, 2, banned=True)
    await add_user(db, 3, blocked=True)
    await add_user(db, 4, paused=True)
    alert = await add_alert(db, NOW)
    assert set(await recipients(db, alert.id)) == {1}  # type: ignore[arg-type]


async def test_half_and_full_updates_go_to_elite_only(db: asyncpg.Pool):
    await add_user(db, 1, tier="elite")
    await add_user(db, 2, tier="pro")
    await add_user(db, 3, tier="free")
    await add_user(db, 4, tier="elite", alert_types=["SPIKE"])
    spike = await add_alert(db, NOW)
    assert set(await recipients(db, spike.id)) == {1, 2, 3, 4}  # type: ignore[arg-type]
    for kind in (AlertType.HALF_UPDATE, AlertType.FULL_UPDATE):
        alert = await add_alert(db, NOW, alert_type=kind)
        assert set(await recipients(db, alert.id)) == {1}  # type: ignore[arg-type]


async def test_an_update_follows_its_spike_whatever_the_users_thresholds(db: asyncpg.Pool):
    await add_user(db, 1, tier="elite", spike_multiple=5.0, min_quote_volume=8e9)  # the SPIKE met both
    await add_user(db, 2, tier="elite", spike_multiple=10.0)  # the SPIKE was below their multiple
    await add_user(db, 3, tier="elite")  # muted when the SPIKE came
    await add_user(db, 5, tier="elite")  # mutes the symbol after the SPIKE
    await db.execute("INSERT INTO mutes VALUES (3, 'BTCUSDT', $1)", NOW + timedelta(minutes=1))
    spike = await add_alert(db, NOW, ratio=6.0, current=9e9)
    assert set(await recipients(db, spike.id)) == {1, 5}  # type: ignore[arg-type]
    await db.execute("UPDATE deliveries SET status = 'sent'")
    # A SPIKE row that ended `skipped` (quiet hours or a mute at send time) does not count as got.
    await db.execute(
        "INSERT INTO deliveries (alert_id, chat_id, due_at, status) VALUES ($1, 3, $2, 'skipped')",
        spike.id,
        NOW,
    )
    await add_user(db, 4, tier="elite")  # joined after the SPIKE
    await db.execute("INSERT INTO mutes VALUES (5, 'BTCUSDT', $1)", NOW + timedelta(hours=2))
    # Another symbol's SPIKE in the same hour opens no door to this symbol's updates.
    other = await add_alert(db, NOW, symbol="ETHUSDT", asset="ETH")
    assert set(await recipients(db, other.id)) == {3, 4, 5}  # type: ignore[arg-type]
    later = NOW + timedelta(minutes=23)
    # The half-hour figures are below user 1's own multiple and minimum volume: sent all the same.
    half = await add_alert(db, later, alert_type=AlertType.HALF_UPDATE, ratio=4.0, current=6e9)
    assert set(await recipients(db, half.id, later)) == {1}  # type: ignore[arg-type]
    full = await add_alert(db, later, alert_type=AlertType.FULL_UPDATE, ratio=2.0, current=4e9)
    assert set(await recipients(db, full.id, later)) == {1}  # type: ignore[arg-type]


async def test_own_thresholds_apply_to_paid_tiers_only(db: asyncpg.Pool):
    await add_user(db, 1, tier="elite", spike_multiple=5.0)
    await add_user(db, 2, tier="pro", min_quote_volume=6e9)
    await add_user(db, 3, tier="pro", spike_multiple=3.0, min_quote_volume=5e9)  # both met exactly
    await add_user(db, 4, tier="free", spike_multiple=10.0)  # a leftover from a paid period: ignored
    await add_user(db, 5, tier="pro", alert_types=["FULL_UPDATE"])  # narrowed away from SPIKE
    alert = await add_alert(db, NOW, ratio=3.33, current=5e9)
    assert set(await recipients(db, alert.id)) == {3, 4}  # type: ignore[arg-type]


async def test_watchlist_only_needs_the_symbol_on_the_watchlist(db: asyncpg.Pool):
    await add_user(db, 1, tier="free", watchlist_only=True, watch=("BTCUSDT",))
    await add_user(db, 2, tier="elite", watchlist_only=True, watch=("ETHUSDT",))
    await add_user(db, 3, tier="elite", watch=("ETHUSDT",))  # watchlist without watchlist-only
    alert = await add_alert(db, NOW)
    assert set(await recipients(db, alert.id)) == {1, 3}  # type: ignore[arg-type]


async def test_a_muted_symbol_is_skipped_until_the_mute_ends(db: asyncpg.Pool):
    await add_user(db, 1)
    await add_user(db, 2)
    await db.execute("INSERT INTO mutes VALUES (1, 'BTCUSDT', $1)", NOW + timedelta(hours=1))
    await db.execute("INSERT INTO mutes VALUES (2, 'BTCUSDT', $1)", NOW)  # ended just now
    await db.execute("INSERT INTO mutes VALUES (2, 'ETHUSDT', $1)", NOW + timedelta(hours=1))
    alert = await add_alert(db, NOW)
    assert set(await recipients(db, alert.id)) == {2}  # type: ignore[arg-type]


async def test_quiet_hours_across_midnight_in_tokyo(db: asyncpg.Pool):
    quiet = (time(22, 0), time(7, 0))  # Asia/Tokyo is UTC+9, no DST
    await add_user(db, 1, tier="elite", quiet=quiet, timezone="Asia/Tokyo")
    await add_user(db, 2, tier="pro", quiet=quiet, timezone="Asia/Tokyo")
    await add_user(db, 3, tier="free", quiet=quiet, timezone="Asia/Tokyo")  # free: no quiet hours
    await add_user(db, 4, tier="elite", quiet=quiet, timezone="Not/AZone")  # unknown zone: UTC
    cases = {
        datetime(2026, 3, 2, 12, 30, tzinfo=UTC): {1, 2, 3, 4},  # 21:30 Tokyo
        datetime(2026, 3, 2, 12, 56, tzinfo=UTC): {1, 3, 4},  # 21:56; pro is due 22:01: quiet
        datetime(2026, 3, 2, 14, 30, tzinfo=UTC): {3, 4},  # 23:30 Tokyo: before midnight
        datetime(2026, 3, 2, 16, 0, tzinfo=UTC): {3, 4},  # 01:00 Tokyo: after midnight
        datetime(2026, 3, 2, 21, 57, tzinfo=UTC): {2, 3, 4},  # 06:57; elite quiet, pro due 07:02
        datetime(2026, 3, 3, 3, 0, tzinfo=UTC): {1, 2, 3},  # 12:00 Tokyo; 03:00 UTC is quiet for user 4
        datetime(2026, 3, 3, 23, 0, tzinfo=UTC): {1, 2, 3},  # 08:00 Tokyo, but 23:00 UTC for user 4
    }
    for index, (detected, expected) in enumerate(cases.items()):
        alert = await add_alert(db, detected, symbol=f"C{index}USDT", asset=f"C{index}")
        assert set(await recipients(db, alert.id, detected)) == expected, detected  # type: ignore[arg-type]


async def test_connected_chats_get_spikes_with_their_tier_delay(db: asyncpg.Pool):
    await db.execute(
        "INSERT INTO chats (id, kind, tier, connected_by) "
        "VALUES (-1, 'group', 'pro', 9), (-2, 'channel', 'free', 9)"
    )
    spike = await add_alert(db, NOW)
    assert await recipients(db, spike.id) == {  # type: ignore[arg-type]
        -1: (1, NOW + timedelta(minutes=5)),
        -2: (2, NOW + timedelta(minutes=15)),
    }
    update = await add_alert(db, NOW, alert_type=AlertType.FULL_UPDATE)
    assert await recipients(db, update.id) == {}  # type: ignore[arg-type]


async def test_running_the_query_twice_creates_nothing_twice(db: asyncpg.Pool):
    await add_user(db, 1)
    alert = await add_alert(db, NOW)
    async with db.acquire() as conn:
        assert await insert_deliveries(conn, alert.id, NOW) == 1  # type: ignore[arg-type]
        assert await insert_deliveries(conn, alert.id, NOW) == 0  # type: ignore[arg-type]


async def test_fan_out_in_chunks_writes_every_recipient_once_and_reports_each_chunk(db: asyncpg.Pool):
    for user in range(1, 6):
        await add_user(db, user)
    await db.execute("INSERT INTO chats (id, kind, tier, connected_by) VALUES (-1, 'group', 'elite', 9)")
    alert = await add_alert(db, NOW)
    chunks: list[int] = []
    total = await fan_out(db, alert.id, NOW, chunk=2, on_chunk=chunks.append)  # type: ignore[arg-type]
    assert total == 6 and chunks == [3, 2, 1]  # the group comes with the first chunk
    again = await fan_out(db, alert.id, NOW, chunk=2)  # type: ignore[arg-type]
    assert again == 0
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 6


async def test_fan_out_writes_a_small_first_chunk_so_sending_can_start_early(db: asyncpg.Pool):
    for user in range(1, 9):
        await add_user(db, user)
    alert = await add_alert(db, NOW)
    chunks: list[int] = []
    total = await fan_out(db, alert.id, NOW, chunk=3, first_chunk=1, on_chunk=chunks.append)  # type: ignore[arg-type]
    assert total == 8 and chunks == [1, 3, 3, 1]
