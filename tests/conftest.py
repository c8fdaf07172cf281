"""Test fixtures: a real PostgreSQL database and a real Redis key prefix per test session.

Nothing is mocked. Each pytest session creates its own database (dropped at the end) and
uses its own Redis key prefix (deleted at the end), so sessions can share the servers and
tests do not assume an empty server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from core.redis_names import RedisNames
from core.settings import Settings, load_settings
from db.migrate import migrate
from db.pool import create_pool
from tests import session_leaks
from tests.fakes.telegram_api import FakeTelegram

DATA = Path(__file__).parent / "data"

PG_ADMIN_URL = os.environ.get("VOLSPIKE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("VOLSPIKE_TEST_REDIS", "redis://127.0.0.1:6379/0")

# Tables the tests write to; emptied by the `db` fixture before a test that asks for it.
TABLES = (
    "broadcast_recipients, broadcasts, admin_audit, webhook_events, payments, deliveries, alerts, "
    "mutes, watchlists, user_settings, users, chats, symbols, candles_1m, mark_snapshots, volume_curves"
)


def pytest_configure(config: pytest.Config) -> None:
    session_leaks.install()  # an unclosed aiohttp session is reported with where it was made


@pytest.fixture(scope="session")
def session_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def database_url(session_id: str) -> Iterator[str]:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/volspike_test_{session_id}"
    yield url


@pytest.fixture(scope="session")
def redis_prefix(session_id: str) -> str:
    return f"vstest:{session_id}:"


@pytest.fixture(scope="session")
def settings(database_url: str, redis_prefix: str) -> Settings:
    """Settings for this test session; every external URL points at 127.0.0.1."""
    return load_settings(
        _env_file=None,
        database_url=database_url,
        redis_url=TEST_REDIS_URL,
        redis_prefix=redis_prefix,
        bot_token=None,
        telegram_api_url="http://127.0.0.1:9",
        binance_rest_url="http://127.0.0.1:9",
        binance_ws_url="ws://127.0.0.1:9",
        webapp_url="https://volspike.test",
        admin_ids="",
    )


@pytest.fixture(scope="session")
async def migrated(database_url: str) -> AsyncIterator[str]:
    await migrate(database_url)
    yield database_url
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        name = database_url.rsplit("/", 1)[1]
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def pool(migrated: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(migrated, min_size=1, max_size=10)
    yield pool
    await pool.close()


# Sessions on the test database that still held the product tables when a test needed them
# emptied (an earlier test's leftover transaction): ended, and listed at the end of the run.
_HELD_TABLES = pytest.StashKey[list[str]]()
TRUNCATE_LOCK_TIMEOUT = "10s"
HOLDERS = """
SELECT DISTINCT a.pid, a.backend_type, a.application_name, a.state, now() - a.xact_start AS open_for,
       left(a.query, 300) AS query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND a.pid <> pg_backend_pid() AND a.datname = current_database()
  AND l.relation = ANY($1::regclass[])
"""


async def empty_tables(pool: asyncpg.Pool, *, lock_timeout: str = TRUNCATE_LOCK_TIMEOUT) -> list[str]:
    """Empty every product table. A session that holds one of them longer than `lock_timeout`
    (an earlier test's leftover transaction) is ended; returns what those sessions were doing."""
    ended: list[str] = []
    tables = [t.strip() for t in TABLES.split(",")]
    async with pool.acquire() as conn:
        for _ in range(3):
            try:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = '{lock_timeout}'")
                    await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
                return ended
            except asyncpg.LockNotAvailableError:
                holders = await conn.fetch(HOLDERS, tables)
                ended.extend(str(dict(h)) for h in holders)
                pids = [h["pid"] for h in holders]
                await conn.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
    raise AssertionError(f"the product tables stayed locked; sessions ended: {ended}")


@pytest.fixture
async def db(pool: asyncpg.Pool, request: pytest.FixtureRequest) -> asyncpg.Pool:
    """The session pool, with every product table emptied first: tests are order-independent.
    Sessions an earlier test left holding a table are ended and listed at the end of the run."""
    ended = await empty_tables(pool)
    held = request.config.stash.setdefault(_HELD_TABLES, [])
    held.extend(f"before {request.node.nodeid}: {e}" for e in ended)
    return pool


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    held = config.stash.get(_HELD_TABLES, [])
    if held:
        terminalreporter.section("sessions that held the product tables (ended by the db fixture)")
        for line in held:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
async def _redis_session(redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await _delete_prefix(client, redis_prefix)
    await client.aclose()


async def _delete_prefix(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis(_redis_session: Redis, redis_prefix: str) -> Redis:
    """A real Redis client; this session's keys are removed before each test that asks for it."""
    await _delete_prefix(_redis_session, redis_prefix)
    return _redis_session


@pytest.fixture
def names(redis_prefix: str) -> RedisNames:
    return RedisNames(redis_prefix)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """The Telegram look-alike on a free loopback port, for the test."""
    async with FakeTelegram() as fake:
        yield fake
