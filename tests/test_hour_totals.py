"""`HourTotals`: the closed 1h kline of an incomplete hour, over the simulator's real REST."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from ingest.backfill import ExchangeClock
from ingest.binance_rest import BinanceRest
from ingest.detector import SpikeDetector
from ingest.hour_totals import HourTotals
from ingest.parsers import Kline
from simulator.config import SimConfig
from simulator.server import SimServer

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
SYMBOL = "ETHUSDT"


def hour_ago(hours: int) -> int:
    now = int(time.time() * 1000)
    return now - now % HOUR_MS - hours * HOUR_MS


P = hour_ago(2)
N = P + HOUR_MS


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    config = SimConfig(symbols=3, seed=9, start_time=N + 10_000, natural_spike_rate=0.0)
    async with SimServer(config) as server:
        yield server


def minute(sim: SimServer, open_ms: int) -> Kline:
    c = sim.market.candle(SYMBOL, "1m", open_ms, sim.now_ms())
    assert c is not None
    return Kline(SYMBOL, "1m", open_ms, open_ms + MINUTE_MS - 1, c.o, c.h, c.l, c.c, c.v, c.q, c.n, c.bv,
                 c.bq, True, open_ms + MINUTE_MS)  # fmt: skip


def klines_1h(sim: SimServer) -> list[dict[str, object]]:
    return [e for e in sim.request_log("/fapi/v1/klines") if e["params"].get("interval") == "1h"]


async def test_a_refused_hour_total_is_asked_again_later_and_completes_the_hour(sim: SimServer) -> None:
    detector = SpikeDetector(3.0, 1.0)
    # hour P with minutes 30-59 missing; event time in hour N, past the close grace
    detector.seed(SYMBOL, [minute(sim, P + m * MINUTE_MS) for m in range(30)])
    detector.seed(SYMBOL, [minute(sim, N)])
    detector.on_time(N + 5_000)
    assert detector.incomplete_hours() == [(SYMBOL, P)]

    now = [100.0]
    clock = ExchangeClock()
    clock.observe(sim.now_ms())
    async with BinanceRest(sim.rest_url, max_attempts=1) as rest:
        totals = HourTotals(rest, detector, clock, retry=2.0, monotonic=lambda: now[0])
        sim.fail_rest(1_000, retry_after=0)
        assert await totals.fetch_due() == 0
        assert await totals.fetch_due() == 0  # not before its retry time: no second request
        assert [e["status"] for e in klines_1h(sim)] == [429]
        now[0] += 2.0
        assert await totals.fetch_due() == 0
        now[0] += 2.0  # the delay doubled: not yet
        assert await totals.fetch_due() == 0
        assert len(klines_1h(sim)) == 2
        sim.fail_rest(0)
        now[0] += 2.0
        assert await totals.fetch_due() == 1
    [asked] = [e for e in klines_1h(sim) if e["status"] == 200]
    assert asked["params"] == {"symbol": SYMBOL, "interval": "1h", "startTime": str(P), "limit": "1"}
    assert asked["weight"] == 1
    assert detector.incomplete_hours() == [] and detector.without_denominator() == []
    snap = detector.snapshot(SYMBOL)
    hour = sim.market.candle(SYMBOL, "1h", P, sim.now_ms())
    assert snap is not None and hour is not None
    assert snap.previous_volume == pytest.approx(hour.q, rel=1e-9)


async def test_an_hour_the_exchange_has_no_closed_kline_for_is_not_taken(sim: SimServer) -> None:
    detector = SpikeDetector(3.0, 1.0)
    sim.list_symbol("NEWUSDT", hourly_quote=5e6)  # listed in hour N: no kline of hour P exists
    detector.on_kline(
        Kline("NEWUSDT", "1m", N, N + MINUTE_MS - 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, False, N + 6_000)
    )
    assert detector.incomplete_hours() == [("NEWUSDT", P)]
    clock = ExchangeClock()
    clock.observe(sim.now_ms())
    async with BinanceRest(sim.rest_url) as rest:
        totals = HourTotals(rest, detector, clock, monotonic=lambda: 0.0)
        assert await totals.fetch_due() == 0
    assert detector.without_denominator() == ["NEWUSDT"]  # the hour N kline answered is not P's
