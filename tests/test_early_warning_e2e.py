"""The early warning end to end: the simulator's hour builds up over many minutes and kline updates
(the own-threshold test's climb: 1.5x the previous hour at 12:09, +0.3x a minute, 3x at 12:14,
5x at 12:21), `run_ingest` projects it from the symbol's stored usual curve (flat: the same share
every minute), `run_bot` delivers to the Telegram look-alike. The users opted in with the bot's
/settings buttons and in the Mini App (PUT /api/settings over real HTTP); one did not.

At 12:09, 1.5x in 9 minutes projects ~9.6x at the close: the public EARLY, sent to both users who
opted in (it projects the 3x user's multiple and the 5x user's alike), minutes before their SPIKEs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from core.redis_names import RedisNames
from core.settings import Settings
from simulator import SimServer
from tests.climb_harness import H12, HOUR, pipeline_settings, services
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.miniapp_harness import init_data, tma
from tests.test_ingest_service import armed, poll
from tests.test_own_thresholds_e2e import SYMBOL, minute, sim  # noqa: F401 (the same climb)
from webapp.app import create_app

pytestmark = pytest.mark.timeout(300)

EARLY_3X, EARLY_5X, NOT_OPTED = 7200001, 7200002, 7200003
FLAT = [(k + 1) / 60 for k in range(60)]


def plain(tg: FakeTelegram, chat: int) -> list[str]:
    return [re.sub(r"<[^>]+>", "", call.text) for call in tg.calls_to("sendMessage", chat)]


async def test_opted_in_users_get_one_early_warning_before_their_spike(
    db: asyncpg.Pool,
    redis: Redis,
    names: RedisNames,
    settings: Settings,
    sim: SimServer,  # noqa: F811
) -> None:
    # the symbol's usual curve for 12:00 UTC, as the curves job stores it (fresh: not recomputed)
    await db.execute(
        "INSERT INTO volume_curves (symbol, hour_of_day, shares, days, computed_at) "
        "VALUES ($1, 12, $2::float8[], 30, now())",
        SYMBOL,
        FLAT,
    )
    async with FakeTelegram() as tg:
        cfg = pipeline_settings(settings, sim, tg)
        app = create_app(cfg, pool=db, redis=redis)
        async with services(cfg, db, redis, sim), TestClient(TestServer(app)) as miniapp:
            for user in (EARLY_3X, EARLY_5X, NOT_OPTED):
                tg.push_message(user, "/start")
                await tg.wait_for_call("sendMessage", user)
            await db.execute("UPDATE users SET tier = 'pro' WHERE id = $1", EARLY_3X)
            await db.execute(
                "UPDATE users SET tier = 'elite' WHERE id = ANY($1::bigint[])", [EARLY_5X, NOT_OPTED]
            )
            # opted in with the bot's /settings button (pro)
            tg.push_callback(EARLY_3X, "settings:type:EARLY")
            await poll(
                lambda: db.fetchval(
                    "SELECT 'EARLY' = ANY(alert_types) FROM user_settings WHERE user_id = $1", EARLY_3X
                ),
                what="the bot to save the early warning",
            )
            # 5x and the early warning saved in the Mini App's settings page (elite)
            response = await miniapp.put(
                "/api/settings",
                json={"spikeMultiple": 5.0, "alertTypes": ["SPIKE", "HALF_UPDATE", "FULL_UPDATE", "EARLY"]},
                headers=tma(init_data(EARLY_5X, token=TOKEN, auth_date=datetime.now(UTC))),
            )
            assert response.status == 200, await response.text()
            await armed(redis, names)

            async def both_spiked() -> bool:
                count = await db.fetchval(
                    "SELECT count(*) FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
                    "WHERE a.alert_type = 'SPIKE' AND d.status = 'sent' AND d.chat_id = ANY($1::bigint[])",
                    [EARLY_3X, EARLY_5X],
                )
                return bool(count == 2)

            await poll(both_spiked, timeout=120, what="both users' SPIKEs (12:14 and 12:21)")
            assert sim.now_ms() < H12 + HOUR

        rows = await db.fetch(
            "SELECT id, detected_at, volume_ratio, current_volume, previous_volume, projected_volume, "
            "level_multiple FROM alerts WHERE symbol = $1 AND alert_type = 'EARLY' ORDER BY detected_at, id",
            SYMBOL,
        )
        # The spike of 12:09:20 ramps in over two exchange seconds; the simulator's updates come
        # every four, so which point of the ramp the first update shows depends on the machine's
        # timing. The public EARLY is the first update projecting 3x (the lowest grade); the 5x
        # user's is the first row projecting 5x: the same row when that update saw the whole ramp.
        public = rows[0]
        assert public["level_multiple"] is None
        assert minute(public["detected_at"]) == 9  # the first update that lifts the pace past 3x
        assert public["volume_ratio"] < 3.0
        assert public["projected_volume"] / public["previous_volume"] >= 3.0
        # the projection is the volume so far over the flat curve's share of the hour elapsed
        for row in rows:
            elapsed = (row["detected_at"] - datetime(2026, 3, 2, 12, 0, tzinfo=UTC)).total_seconds() / 3600
            assert row["projected_volume"] == pytest.approx(row["current_volume"] / elapsed, rel=1e-6)
        five = next(r for r in rows if r["projected_volume"] / r["previous_volume"] >= 5.0)
        assert minute(five["detected_at"]) == 9  # the ramp ends within the same minute
        spikes = await db.fetch(
            "SELECT d.chat_id, a.detected_at FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            "WHERE a.alert_type = 'SPIKE' AND a.symbol = $1",
            SYMBOL,
        )
        spiked_at = {r["chat_id"]: r["detected_at"] for r in spikes}
        early = await db.fetch(
            "SELECT d.chat_id, d.alert_id, d.status FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            "WHERE a.alert_type = 'EARLY'"
        )
        assert {(r["chat_id"], r["alert_id"], r["status"]) for r in early} == {
            (EARLY_3X, public["id"], "sent"),
            (EARLY_5X, five["id"], "sent"),
        }
        for user in (EARLY_3X, EARLY_5X):
            assert public["detected_at"] < spiked_at[user]
            messages = [m for m in plain(tg, user) if "EARLY WARNING (projection)" in m]
            assert len(messages) == 1  # one per user per symbol-hour
            assert "Not a spike yet: so far" in messages[0]
            assert "it may not get there" in messages[0]
        assert not [m for m in plain(tg, NOT_OPTED) if "EARLY WARNING" in m]
        assert NOT_OPTED in spiked_at  # they had their SPIKE
