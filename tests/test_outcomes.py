"""SPIKE outcomes computed by the job from real candles in PostgreSQL, with a controllable clock:
each horizon as it passes, MFE/MAE, against BTC, across a restart, with missing candles."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from core.clock import ManualClock
from core.outcomes import Outcome
from db import alert_outcomes
from ingest.outcomes import OutcomesJob
from tests.outcome_harness import DETECTED, HOUR, Scenario, write

approx = pytest.approx


def job(pool: asyncpg.Pool, clock: ManualClock) -> OutcomesJob:
    return OutcomesJob(pool, lookback_days=90, clock=clock)


async def outcome(pool: asyncpg.Pool, alert_id: int) -> Outcome | None:
    return (await alert_outcomes.for_alerts(pool, [alert_id])).get(alert_id)


async def test_each_horizon_is_computed_as_it_passes(db: asyncpg.Pool) -> None:
    alert_id = await write(db, Scenario())
    clock = ManualClock(HOUR + timedelta(minutes=37))  # +15 min candle 10:35 closed, grace not over
    runner = job(db, clock)
    assert await runner.run_once() == 0 and await outcome(db, alert_id) is None

    clock.set(HOUR + timedelta(minutes=38))
    assert await runner.run_once() == 1
    first = await outcome(db, alert_id)
    assert first is not None and first.horizon_minutes == 15
    assert first.changes == (approx(2.0), None, None)
    assert first.btc_changes == (approx(1.0), None, None)
    assert first.relative(15) == approx(1.0)
    assert first.taker_share == approx(0.7) and first.direction == 1 and first.direction_source == "taker"
    assert first.mfe is None and first.mae is None  # the 4 h window has not passed
    assert await runner.run_once() == 0  # nothing owed until +1 h

    clock.set(HOUR + timedelta(hours=1, minutes=23))
    assert await runner.run_once() == 1
    second = await outcome(db, alert_id)
    assert second is not None and second.horizon_minutes == 60
    assert second.changes == (approx(2.0), approx(-3.0), None)
    assert second.relative(60) == approx(-1.0)

    clock.set(HOUR + timedelta(hours=4, minutes=23))
    assert await runner.run_once() == 1
    done = await outcome(db, alert_id)
    assert done is not None and done.horizon_minutes == 240
    assert done.changes == (approx(2.0), approx(-3.0), approx(5.0))
    assert done.btc_changes == (approx(1.0), approx(-2.0), approx(2.0))
    assert done.relative(240) == approx(3.0)
    assert (done.mfe, done.mae) == (approx(8.0), approx(-5.0))
    assert (done.rel_mfe, done.rel_mae) == (approx(3.0), approx(-4.0))
    clock.advance(timedelta(hours=5))
    assert await runner.run_once() == 0  # finished outcomes are never recomputed


async def test_a_selling_hour_measures_moves_downwards(db: asyncpg.Pool) -> None:
    alert_id = await write(db, Scenario(taker=300.0))
    await job(db, ManualClock(HOUR + timedelta(hours=5))).run_once()
    done = await outcome(db, alert_id)
    assert done is not None and done.direction == -1 and done.taker_share == approx(0.3)
    assert done.changes == (approx(2.0), approx(-3.0), approx(5.0))  # the price change is not turned
    assert (done.mfe, done.mae) == (approx(5.0), approx(-8.0))
    assert (done.rel_mfe, done.rel_mae) == (approx(4.0), approx(-3.0))


async def test_balanced_takers_fall_back_to_the_hours_price_move(db: asyncpg.Pool) -> None:
    alert_id = await write(db, Scenario(taker=500.0, hour_open=99.0))
    await job(db, ManualClock(HOUR + timedelta(hours=5))).run_once()
    done = await outcome(db, alert_id)
    assert done is not None and done.taker_share == approx(0.5)
    assert done.direction == 1 and done.direction_source == "price"
    assert done.mfe == approx(8.0)


async def test_a_restart_between_horizons_catches_up_once(db: asyncpg.Pool) -> None:
    alert_id = await write(db, Scenario())
    clock = ManualClock(HOUR + timedelta(minutes=40))
    assert await job(db, clock).run_once() == 1  # +15 min stored, then the process stops
    # Down through +1 h and +4 h; a new process (a new job over the same database) comes back.
    clock.set(HOUR + timedelta(hours=6))
    restarted = job(db, clock)
    assert await restarted.run_once() == 1
    assert await restarted.run_once() == 0
    assert await job(db, clock).run_once() == 0  # and a second runner finds nothing owed
    done = await outcome(db, alert_id)
    assert done is not None and done.horizon_minutes == 240
    assert done.changes == (approx(2.0), approx(-3.0), approx(5.0))
    assert (done.mfe, done.mae, done.rel_mfe, done.rel_mae) == (
        approx(8.0),
        approx(-5.0),
        approx(3.0),
        approx(-4.0),
    )
    computed_at = await db.fetchval("SELECT computed_at FROM alert_outcomes WHERE alert_id = $1", alert_id)
    assert computed_at == clock.now()


async def test_missing_candles_are_unknown_not_zero(db: asyncpg.Pool) -> None:
    gap = HOUR + timedelta(hours=1, minutes=20)  # the +1 h candle
    alert_id = await write(db, Scenario(skip={gap}, skip_btc={HOUR + timedelta(hours=4, minutes=20)}))
    await job(db, ManualClock(HOUR + timedelta(hours=5))).run_once()
    done = await outcome(db, alert_id)
    assert done is not None and done.horizon_minutes == 240
    assert done.changes == (approx(2.0), None, approx(5.0))
    assert done.btc_changes == (approx(1.0), approx(-2.0), None)
    assert done.relative(60) is None and done.relative(240) is None
    assert done.mfe is None and done.mae is None  # a minute of the 4 h window is missing
    assert done.rel_mfe is None and done.rel_mae is None
    stored = await db.fetchrow("SELECT change_1h, mfe FROM alert_outcomes WHERE alert_id = $1", alert_id)
    assert stored["change_1h"] is None and stored["mfe"] is None


async def test_only_spikes_in_the_lookback_are_owed_outcomes(db: asyncpg.Pool) -> None:
    old = await write(db, Scenario(symbol="OLDUSDT"))
    recent = await write(db, Scenario(symbol="NEWUSDT"), detected=DETECTED + timedelta(days=10))
    await db.execute("UPDATE alerts SET alert_type = 'HALF_UPDATE' WHERE id = $1", old)
    clock = ManualClock(DETECTED + timedelta(days=10, hours=5))
    assert await OutcomesJob(db, lookback_days=30, clock=clock).run_once() == 1
    assert await outcome(db, old) is None
    assert (done := await outcome(db, recent)) is not None and done.change(240) == approx(5.0)
