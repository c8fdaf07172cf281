"""The webapp's answer cache: one build per key at a time, and requests arriving during a refresh
are answered from the previous copy instead of queueing behind the rebuild."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from core.redis_names import RedisNames
from webapp import cache
from webapp.cache import AnswerCache


async def test_requests_during_a_refresh_get_the_previous_copy_without_waiting(
    redis: Redis, names: RedisNames, monkeypatch
) -> None:
    monkeypatch.setattr(cache, "LOCAL_SECONDS", 0.0)  # every request after the first refreshes
    answers = AnswerCache(redis, names)
    builds: list[int] = []
    release = asyncio.Event()

    async def build() -> bytes:
        builds.append(len(builds))
        if len(builds) > 1:
            await release.wait()  # a slow rebuild
        return f"v{len(builds)}".encode()

    assert await answers.get("k", 30, build) == b"v1"
    await redis.delete(names.answer_cache("k"))  # the shared copy expired: the next get rebuilds
    refreshing = asyncio.ensure_future(answers.get("k", 30, build))
    await asyncio.sleep(0.05)
    assert builds == [0, 1]
    # While the rebuild is under way, others are answered at once from the previous copy.
    assert (
        await asyncio.wait_for(asyncio.gather(*(answers.get("k", 30, build) for _ in range(20))), 1)
        == [b"v1"] * 20
    )
    assert builds == [0, 1]  # single flight: nobody else rebuilt
    release.set()
    assert await refreshing == b"v2"


async def test_without_a_previous_copy_concurrent_requests_share_one_build(
    redis: Redis, names: RedisNames
) -> None:
    answers = AnswerCache(redis, names)
    calls = 0

    async def build() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return b"x"

    assert await asyncio.gather(*(answers.get("cold", 30, build) for _ in range(10))) == [b"x"] * 10
    assert calls == 1
