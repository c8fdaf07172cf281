"""The Binance REST client against the simulator: weights, Retry-After, errors, encoding."""

from __future__ import annotations

import asyncio
import time

import pytest

from ingest.binance_rest import (
    BinanceApiError,
    BinanceRest,
    BinanceUnavailable,
    WeightBudget,
    klines_weight,
    weight_limit_from,
)
from simulator.config import SimConfig
from simulator.server import SimServer


def test_klines_weight_follows_the_documented_limit_brackets() -> None:
    assert [klines_weight(n) for n in (1, 99, 100, 499, 500, 1000, 1001, 1500)] == [1, 1, 2, 2, 5, 5, 10, 10]


def test_weight_limit_is_read_from_rate_limits() -> None:
    info = {
        "rateLimits": [
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
        ]
    }
    assert weight_limit_from(info) == 2400
    assert weight_limit_from({"rateLimits": []}) is None


class FakeTime:
    def __init__(self) -> None:
        self.now = 60.0 * 16_667 + 20.0  # 20 s into a minute

    def __call__(self) -> float:
        return self.now


async def test_budget_waits_for_the_next_minute_when_the_limit_is_reached() -> None:
    clock = FakeTime()
    budget = WeightBudget(100, headroom=1.0, slow_at=1.0, monotonic=clock, wall=clock)
    await budget.acquire(60)
    budget.settle(60, None)

    waiter = asyncio.create_task(budget.acquire(50))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # 60 + 50 > 100 in this minute

    clock.now += 41.0  # the next minute starts
    await asyncio.wait_for(waiter, 5)
    assert budget.used == 50


async def test_budget_resynchronises_from_the_used_weight_header() -> None:
    clock = FakeTime()
    budget = WeightBudget(100, headroom=1.0, slow_at=1.0, monotonic=clock, wall=clock)
    await budget.acquire(1)
    budget.settle(1, used_header=95)  # someone else on this IP spent weight too

    assert budget.used == 95
    waiter = asyncio.create_task(budget.acquire(10))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    waiter.cancel()


async def test_background_share_leaves_room_for_urgent_requests() -> None:
    clock = FakeTime()
    budget = WeightBudget(100, headroom=1.0, slow_at=1.0, monotonic=clock, wall=clock)
    await budget.acquire(45, share=0.5)
    background = asyncio.create_task(budget.acquire(10, share=0.5))
    await asyncio.sleep(0.05)
    assert not background.done()

    await asyncio.wait_for(budget.acquire(40), 1)  # the full budget still has room
    background.cancel()


async def test_exchange_info_sets_the_weight_limit_and_weights_are_counted() -> None:
    async with SimServer(SimConfig(symbols=3, weight_limit=1200)) as sim, BinanceRest(sim.rest_url) as rest:
        await rest.exchange_info()
        assert rest.budget.limit == 1200

        rows = await rest.klines("BTCUSDT", "1m", limit=120)
        assert len(rows) == 120 and len(rows[0]) >= 11
        assert rest.budget.used == sim.limiter.used  # resynchronised from X-MBX-USED-WEIGHT-1M
        assert [e["weight"] for e in sim.request_log()] == [1, 2]


async def test_binance_error_body_becomes_a_typed_exception() -> None:
    async with SimServer(SimConfig(symbols=3)) as sim, BinanceRest(sim.rest_url) as rest:
        with pytest.raises(BinanceApiError) as caught:
            await rest.klines("NOSUCHUSDT", "1m", limit=5)

        assert caught.value.status == 400
        assert caught.value.code == -1121
        assert "Invalid symbol" in caught.value.msg
        assert len(sim.request_log()) == 1  # a client error is not retried


async def test_non_ascii_symbol_is_url_encoded_and_reaches_the_exchange_intact() -> None:
    async with SimServer(SimConfig(symbols=3)) as sim, BinanceRest(sim.rest_url) as rest:
        rows = await rest.klines("币安人生USDT", "1m", limit=3)

        assert len(rows) == 3
        assert sim.request_log("/fapi/v1/klines")[0]["params"]["symbol"] == "币安人生USDT"


async def test_429_pauses_every_caller_for_retry_after() -> None:
    async with SimServer(SimConfig(symbols=3)) as sim, BinanceRest(sim.rest_url) as rest:
        await rest.server_time()
        sim.clear_request_log()
        sim.fail_rest(1, retry_after=2, status=429)

        first = asyncio.create_task(rest.klines("BTCUSDT", "1m", limit=5))
        async with asyncio.timeout(5):
            while True:  # until the 429 has been received
                if rest.budget.paused_for > 0:
                    break
                await asyncio.sleep(0.01)
        others = [asyncio.create_task(rest.server_time()) for _ in range(3)]
        rows = await first
        await asyncio.gather(*others)

        assert len(rows) == 5
        log = sim.request_log()
        assert [e["status"] for e in log].count(429) == 1
        refused_at = next(e["time"] for e in log if e["status"] == 429)
        after = [e["time"] for e in log if e["status"] == 200]
        assert len(after) == 4  # the retried klines and the three other callers
        # nothing reached the exchange inside the Retry-After window
        assert min(after) >= refused_at + 2 - 0.05
        assert rest.budget.paused_total == 1


async def test_418_ban_is_obeyed_then_requests_resume() -> None:
    async with SimServer(SimConfig(symbols=3)) as sim, BinanceRest(sim.rest_url) as rest:
        sim.fail_rest(2, retry_after=1, status=418)
        started = time.monotonic()

        assert await rest.server_time() > 0

        assert time.monotonic() - started >= 2 - 0.05  # two bans of 1 s each, waited out
        assert [e["status"] for e in sim.request_log()] == [418, 418, 200]


async def test_unreachable_exchange_gives_up_after_bounded_retries() -> None:
    rest = BinanceRest("http://127.0.0.1:9", max_attempts=3, backoff_base=0.01, timeout=1.0)
    try:
        with pytest.raises(BinanceUnavailable):
            await rest.server_time()
    finally:
        await rest.close()


async def test_open_interest_requests_are_charged_their_documented_weights() -> None:
    async with SimServer(SimConfig(symbols=3)) as sim, BinanceRest(sim.rest_url) as rest:
        await rest.server_time()
        before = rest.budget.used
        now = await rest.open_interest("BTCUSDT")
        assert rest.budget.used == before + 1  # /fapi/v1/openInterest: 1
        hour = sim.now_ms() - sim.now_ms() % 3_600_000
        rows = await rest.open_interest_hist("BTCUSDT", "5m", start_ms=hour, limit=1)
        assert rest.budget.used == before + 1  # /futures/data/openInterestHist: 0
        assert float(now["openInterest"]) > 0 and rows[0]["timestamp"] == hour
        assert [(e["path"], e["weight"]) for e in sim.request_log()][1:] == [
            ("/fapi/v1/openInterest", 1),
            ("/futures/data/openInterestHist", 0),
        ]
