"""The sender's cap on sendMessage calls open at once (bot.delivery.sender.RequestGate)."""

from __future__ import annotations

import asyncio

from bot.delivery.sender import RequestGate


async def test_the_gate_never_opens_more_than_its_limit_and_serves_waiters_in_order() -> None:
    gate = RequestGate(rate=80, initial_rtt=0.1)  # limit = 8
    assert gate.limit == 8
    inside = 0
    peak = 0
    order: list[int] = []
    release = asyncio.Event()

    async def call(n: int) -> None:
        nonlocal inside, peak
        async with gate.slot():
            order.append(n)
            inside += 1
            peak = max(peak, inside)
            await release.wait()
            inside -= 1

    tasks = [asyncio.create_task(call(n)) for n in range(20)]
    await asyncio.sleep(0.01)
    assert inside == 8 and order == list(range(8))
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 8 and order == list(range(20))


async def test_a_cancelled_waiter_gives_no_slot_away_and_keeps_none() -> None:
    gate = RequestGate(rate=80, initial_rtt=0.1)  # limit = 8
    hold = asyncio.Event()

    async def call() -> None:
        async with gate.slot():
            await hold.wait()

    holders = [asyncio.create_task(call()) for _ in range(8)]
    await asyncio.sleep(0.01)
    waiting = [asyncio.create_task(call()) for _ in range(3)]
    await asyncio.sleep(0.01)
    waiting[1].cancel()
    hold.set()
    await asyncio.gather(*holders, waiting[0], waiting[2])
    assert waiting[1].cancelled()
    # Everything released: a full set of new callers gets in at once.
    entered = 0

    async def probe() -> None:
        nonlocal entered
        async with gate.slot():
            entered += 1
            await asyncio.sleep(0.01)

    hold.clear()
    await asyncio.wait_for(asyncio.gather(*(probe() for _ in range(8))), 1)
    assert entered == 8
