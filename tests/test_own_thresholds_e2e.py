"""Own thresholds end to end, as paying users meet them: the simulator's hour builds up over many
minutes and kline updates, `run_ingest` records the climb, `run_bot` delivers to the Telegram
look-alike, and the users chose their thresholds in the bot (`/settings` buttons) and in the Mini
App (PUT /api/settings over real HTTP). Sim time runs 40x, and the bot's clock is the sim's.

The symbol trades ~$7M an hour. Every minute from 12:09 a scheduled spike lifts its hour by 0.3x
the previous hour, from 1.5x to 9x at 12:34: it passes 3x at 12:14, $25M at ~12:16, 5x at 12:21
and 9x at 12:34."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from core.clock import ms_from_utc, utc_from_ms
from core.redis_names import RedisNames
from core.settings import Settings
from ingest.service import run_ingest
from simulator import SimServer
from tests.climb_harness import H12, HOUR, MIN, climbing, pipeline_settings, services
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fault_checks import HEADLINE, TYPE_OF_PREFIX
from tests.miniapp_harness import init_data, tma
from tests.stopping import stop_within
from tests.test_ingest_service import FAST, armed, poll, settings_for
from webapp.app import create_app

pytestmark = pytest.mark.timeout(300)  # an exchange hour at 40x real time, on a loaded 2-core machine

SYMBOL = "CLIMBUSDT"
DEFAULT, FIVE, QUARTER = 7100001, 7100002, 7100003
STEPS = [(9 + i, 1.5 + 0.3 * i) for i in range(26)]  # (minute of 12:00, multiple of the previous hour)
RATIO = re.compile(r"\(([0-9.]+)× prev\)")


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with climbing(SYMBOL, STEPS, symbols=4, speed=40.0) as server:
        yield server


def texts(tg: FakeTelegram, chat: int, kind: str) -> list[str]:
    """The chat's alert messages of one kind (SPIKE, HALF_UPDATE, FULL_UPDATE), without markup: an
    update is an edit of the chat's SPIKE message."""
    out = []
    for call in [*tg.calls_to("sendMessage", chat), *tg.calls_to("editMessageText", chat)]:
        text = re.sub(r"<[^>]+>", "", call.text)
        match = HEADLINE.search(text)
        if match is not None and TYPE_OF_PREFIX[match.group(1)] == kind:
            out.append(text)
    return out


async def spike_rows(db: asyncpg.Pool) -> dict[int, asyncpg.Record]:
    rows = await db.fetch(
        "SELECT d.chat_id, a.detected_at, a.volume_ratio, a.current_volume, a.previous_volume, "
        "a.level_multiple FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
        "WHERE a.alert_type = 'SPIKE' AND a.symbol = $1",
        SYMBOL,
    )
    return {r["chat_id"]: r for r in rows}


async def history(db: asyncpg.Pool) -> str:
    """What ingest recorded and the bot did with it, for an assertion's message."""
    rows = await db.fetch(
        "SELECT a.id, a.alert_type, a.detected_at, round(a.volume_ratio::numeric, 2) AS ratio, "
        "a.level_multiple, a.level_volume, d.chat_id, d.status, d.error, d.edited FROM alerts a "
        "LEFT JOIN deliveries d ON d.alert_id = a.id WHERE a.symbol = $1 ORDER BY a.id, d.chat_id",
        SYMBOL,
    )
    return "\n".join(str(dict(r)) for r in rows)


def minute(when: datetime) -> int:
    return (ms_from_utc(when) - H12) // MIN


async def test_each_user_gets_one_spike_when_the_building_hour_first_reaches_their_thresholds(
    db: asyncpg.Pool, redis: Redis, names: RedisNames, settings: Settings, sim: SimServer
) -> None:
    async with FakeTelegram() as tg:
        cfg = pipeline_settings(settings, sim, tg)
        app = create_app(cfg, pool=db, redis=redis)
        async with services(cfg, db, redis, sim), TestClient(TestServer(app)) as miniapp:
            for user in (DEFAULT, FIVE, QUARTER):
                tg.push_message(user, "/start")
                await tg.wait_for_call("sendMessage", user)
            await db.execute(
                "UPDATE users SET tier = 'elite' WHERE id = ANY($1::bigint[])", [DEFAULT, FIVE, QUARTER]
            )
            # 5x saved in the Mini App's settings page
            response = await miniapp.put(
                "/api/settings",
                json={"spikeMultiple": 5.0},
                headers=tma(init_data(FIVE, token=TOKEN, auth_date=datetime.now(UTC))),
            )
            assert response.status == 200, await response.text()
            # $25M chosen with the bot's /settings buttons
            tg.push_callback(QUARTER, "settings:vol:25000000")
            await poll(
                lambda: db.fetchval(
                    "SELECT min_quote_volume = 25e6 FROM user_settings WHERE user_id = $1", QUARTER
                ),
                what="the bot to save $25M",
            )
            await armed(redis, names)
            assert sim.now_ms() < H12 + STEPS[0][0] * MIN, "armed too late for the climb"

            # the hour climbs to 9x; every user waits for their own moment, and the hour's close
            await poll(lambda: sim.now_ms() > H12 + HOUR + 20_000, timeout=120, what="the hour to close")
            await tg.wait_for(
                lambda calls: all(texts(tg, u, "FULL_UPDATE") for u in (DEFAULT, FIVE, QUARTER)), timeout=30
            )

        previous = await db.fetchval("SELECT previous_volume FROM alerts WHERE symbol = $1 LIMIT 1", SYMBOL)
        assert 25e6 / 4.5 < previous < 25e6 / 3.3  # $25M is passed between 3x and 5x
        got = await spike_rows(db)
        assert set(got) == {DEFAULT, FIVE, QUARTER}
        # the default user at 3x, as before
        assert got[DEFAULT]["level_multiple"] is None
        assert 3.0 <= got[DEFAULT]["volume_ratio"] < 3.3 and minute(got[DEFAULT]["detected_at"]) == 14
        # 5x: the moment the hour first stood at 5x, not the 3x alert's figures nor the 9x hour's
        assert 5.0 <= got[FIVE]["volume_ratio"] < 5.3 and minute(got[FIVE]["detected_at"]) == 21
        # $25M: the moment it passed $25M, with at least 3x
        assert 25e6 <= got[QUARTER]["current_volume"] < 25e6 + 0.31 * previous
        assert got[DEFAULT]["detected_at"] < got[QUARTER]["detected_at"] < got[FIVE]["detected_at"]
        hour_top = await db.fetchval("SELECT max(volume_ratio) FROM alerts WHERE symbol = $1", SYMBOL)
        assert hour_top >= 9.0

        for user in (DEFAULT, FIVE, QUARTER):
            [spike] = texts(tg, user, "SPIKE")  # one message per user per symbol-hour
            [ratio] = RATIO.findall(spike)
            assert float(ratio) == pytest.approx(got[user]["volume_ratio"], abs=0.006)
            assert len(texts(tg, user, "FULL_UPDATE")) == 1
        # HALF at 12:30 only for those whose own SPIKE came at minute <= 20
        halves = {u: len(texts(tg, u, "HALF_UPDATE")) for u in (DEFAULT, QUARTER)}
        assert halves == {DEFAULT: 1, QUARTER: 1}, await history(db)
        assert texts(tg, FIVE, "HALF_UPDATE") == []
        # each user's updates speak of their own SPIKE
        for user in (DEFAULT, FIVE, QUARTER):
            [full] = texts(tg, user, "FULL_UPDATE")
            assert f"Since the spike at {got[user]['detected_at']:%H:%M}:" in full, full
            # ... and edit that user's own SPIKE message: one message per user per symbol-hour
            [message] = [c for c in tg.calls_to("sendMessage", user) if "VOLUME SPIKE" in c.text]
            edits = [c for c in tg.calls_to("editMessageText", user) if "UPDATE" in c.text]
            assert edits and all(e.params["message_id"] == str(message.message_id) for e in edits)


async def crossings(db: asyncpg.Pool) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT id, detected_at, volume_ratio, current_volume, level_multiple, level_volume FROM alerts "
        "WHERE symbol = $1 AND alert_type = 'SPIKE' ORDER BY detected_at, id",
        SYMBOL,
    )


async def test_a_restart_resends_nothing_and_a_threshold_passed_while_down_is_alerted_after(
    db: asyncpg.Pool, redis: Redis, names: RedisNames, settings: Settings, sim: SimServer
) -> None:
    cfg = settings_for(settings, sim)

    async def passed_25m() -> bool:
        return any(r["level_volume"] == 25e6 for r in await crossings(db))

    task = asyncio.create_task(run_ingest(cfg, db, redis, history=False, **FAST))
    try:
        await armed(redis, names)
        await poll(passed_25m, timeout=60, what="the $25M crossing")
    finally:
        await stop_within(task, 10, "ingest")
    before = await crossings(db)
    assert max(r["volume_ratio"] for r in before) < 5.0
    down_until = H12 + 24 * MIN  # 5x (12:21) is passed while ingest is down
    await poll(lambda: sim.now_ms() > down_until, timeout=60, what="12:24")

    restarted_at = utc_from_ms(sim.now_ms())
    task = asyncio.create_task(run_ingest(cfg, db, redis, history=False, **FAST))
    try:
        await armed(redis, names)

        async def passed_7x() -> bool:
            return any((r["level_multiple"] or 0) >= 7.0 for r in await crossings(db))

        await poll(passed_7x, timeout=60, what="the 7x crossing after the restart")
    finally:
        await stop_within(task, 10, "ingest")
    after = await crossings(db)
    assert after[: len(before)] == before  # nothing before the restart was recorded again
    new = after[len(before) :]
    # the 5x passed while down: recorded once ingest was back, with the figures of that moment
    first = new[0]
    assert first["level_multiple"] == 5.0 and first["detected_at"] >= restarted_at
    assert 5.0 * 1.02 < first["volume_ratio"] < 7.0
    grades = [(r["level_multiple"], r["level_volume"]) for r in after if r["level_multiple"] is not None]
    assert len(grades) == len(set(grades))
    assert [r["level_multiple"] for r in after].count(None) == 1  # one public SPIKE
