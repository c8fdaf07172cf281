"""The `db` fixture's emptying: a transaction an earlier test left open on a product table does
not make the next test wait (CI once saw four tests time out behind one); it is ended and named."""

from __future__ import annotations

import asyncpg

from tests.conftest import empty_tables
from tests.miniapp_harness import add_symbols


async def test_a_leftover_transaction_is_ended_and_named(db: asyncpg.Pool, migrated: str) -> None:
    await add_symbols(db, ["BTCUSDT"])
    leftover = await asyncpg.connect(migrated)
    try:
        await leftover.execute("BEGIN")
        assert await leftover.fetchval("SELECT count(*) FROM symbols") == 1  # holds ACCESS SHARE
        ended = await empty_tables(db, lock_timeout="200ms")
        assert len(ended) == 1 and "SELECT count(*) FROM symbols" in ended[0]
        assert await db.fetchval("SELECT count(*) FROM symbols") == 0
        assert leftover.is_closed() or await _closed_by_server(leftover)
    finally:
        leftover.terminate()


async def _closed_by_server(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
    except (asyncpg.exceptions.AdminShutdownError, asyncpg.ConnectionDoesNotExistError, OSError):
        return True
    return False


async def test_nothing_is_ended_when_no_session_holds_a_table(db: asyncpg.Pool) -> None:
    assert await empty_tables(db, lock_timeout="200ms") == []
