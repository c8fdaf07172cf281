"""The first version's polling loop (bench/polling_baseline.py) against the simulator over real
HTTP: it sees a spike at its next 5-minute poll, once per hour, and misses one that comes after
the last poll of its hour. The sim clock is all but frozen and moved with ``advance``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bench.polling_baseline import PollingBaseline, SimTime, Spike
from ingest.detector import SpikeDetector
from simulator import SimConfig, SimServer

HOUR = 3_600_000
MINUTE = 60_000
START = 1_767_225_600_000 + 1 * MINUTE + 10_000  # 2026-01-01 00:01:10 UTC
MULTIPLE = 3.0
MIN_VOLUME = 3_000_000.0


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    cfg = SimConfig(
        symbols=3, seed=31, start_time=START, speed=1e-9, natural_spike_rate=0.0, special_symbols=False
    )
    async with SimServer(cfg) as server:
        yield server


@pytest.fixture
async def poller(sim: SimServer) -> AsyncIterator[PollingBaseline]:
    async with aiohttp.ClientSession() as http:
        clock = SimTime(sim.now_ms(), sim.clock.speed)
        yield PollingBaseline(http, sim.rest_url, ["ETHUSDT"], SpikeDetector(MULTIPLE, MIN_VOLUME), clock)


def move_to(sim: SimServer, poller: PollingBaseline, at_ms: int) -> None:
    sim.advance((at_ms - sim.now_ms()) / 1000.0)
    poller.clock = SimTime(sim.now_ms(), sim.clock.speed)


async def test_spike_is_seen_at_the_next_poll_and_only_once(sim: SimServer, poller: PollingBaseline) -> None:
    hour = START // HOUR * HOUR
    await poller.poll("ETHUSDT")  # 00:01: nothing yet
    assert poller.detections == {}
    move_to(sim, poller, hour + 2 * MINUTE)
    info = sim.trigger_spike("ETHUSDT", 5.0, min_quote_volume=2 * MIN_VOLUME)
    spike = Spike.from_sim(info.as_dict(), MULTIPLE, MIN_VOLUME)
    assert info.start_ms <= spike.crossed_ms <= info.end_ms
    move_to(sim, poller, hour + 5 * MINUTE)
    await poller.poll("ETHUSDT")
    assert poller.detections == {("ETHUSDT", hour): hour + 5 * MINUTE}
    assert 170 < (poller.detections[("ETHUSDT", hour)] - spike.crossed_ms) / 1000 < 181
    price, funding = poller.messages[("ETHUSDT", hour)]
    assert price > 0 and funding
    move_to(sim, poller, hour + 10 * MINUTE)
    await poller.poll("ETHUSDT")
    assert list(poller.detections) == [("ETHUSDT", hour)]
    assert poller.weight == 9  # three calls of weight 1 per poll


async def test_spike_after_the_last_poll_of_its_hour_is_missed(
    sim: SimServer, poller: PollingBaseline
) -> None:
    hour = START // HOUR * HOUR
    move_to(sim, poller, hour + 55 * MINUTE)
    await poller.poll("ETHUSDT")
    move_to(sim, poller, hour + 57 * MINUTE + 30_000)
    sim.trigger_spike("ETHUSDT", 5.0, min_quote_volume=2 * MIN_VOLUME)
    move_to(sim, poller, hour + HOUR)  # the next poll compares the spiked hour with a new one
    await poller.poll("ETHUSDT")
    move_to(sim, poller, hour + HOUR + 5 * MINUTE)
    await poller.poll("ETHUSDT")
    assert poller.detections == {}
