"""The one classification of "PostgreSQL or Redis is unavailable", checked against the errors the
real servers raise."""

from __future__ import annotations

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from core.backoff import Backoff
from core.redis_names import RedisNames
from db.unavailable import is_unavailable
from tests.conftest import TEST_REDIS_URL


async def _error_of(coro: object) -> BaseException:
    try:
        await coro  # type: ignore[misc]
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever the server made the client raise
        return exc
    raise AssertionError("no error raised")


async def test_a_terminated_backend_and_a_closed_connection_are_unavailable_a_bad_statement_is_not(
    migrated: str,
):
    conn = await asyncpg.connect(migrated)
    try:
        refused = await _error_of(conn.execute("SELECT * FROM no_such_table"))
        assert not is_unavailable(refused)
        killed = await _error_of(conn.execute("SELECT pg_terminate_backend(pg_backend_pid())"))
        assert is_unavailable(killed)
        closed = await _error_of(conn.execute("SELECT 1"))
        assert isinstance(closed, asyncpg.InterfaceError) and is_unavailable(closed)
    finally:
        conn.terminate()
    refused_port = await _error_of(asyncpg.connect("postgresql://postgres@127.0.0.1:9/x", timeout=2))
    assert is_unavailable(refused_port)


async def test_a_killed_redis_client_is_unavailable_a_refused_command_is_not(redis: Redis, names: RedisNames):
    victim = Redis.from_url(TEST_REDIS_URL, client_name=f"{names.prefix}victim")
    try:
        await victim.set(f"{names.prefix}k", "v")
        wrong_type = await _error_of(victim.xlen(f"{names.prefix}k"))
        assert isinstance(wrong_type, ResponseError) and not is_unavailable(wrong_type)
        for client in await redis.client_list():
            if client.get("name") == f"{names.prefix}victim":
                await redis.execute_command("CLIENT", "KILL", "ID", client["id"])
        dropped = await _error_of(victim.execute_command("BLPOP", f"{names.prefix}nothing", 0.5))
        assert is_unavailable(dropped)
    finally:
        await victim.aclose()
    assert is_unavailable(ResponseError("LOADING Redis is loading the dataset in memory"))
    assert is_unavailable(ResponseError("MISCONF Redis is configured to save RDB snapshots"))


@pytest.mark.parametrize("seed", range(3))
def test_backoff_doubles_up_to_its_cap_and_resets(seed: int):
    backoff = Backoff(first=1.0, cap=4.0)
    delays = [backoff.next_delay() for _ in range(5)]
    for delay, base in zip(delays, [1, 2, 4, 4, 4], strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
    backoff.reset()
    assert backoff.next_delay() <= 1.2
