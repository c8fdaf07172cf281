"""Migrations: create the database, apply in order, idempotent, safe when run concurrently."""

import asyncio
import uuid

import asyncpg
import pytest

from db.migrate import load_migrations, migrate
from tests.conftest import PG_ADMIN_URL


@pytest.fixture
async def fresh_url():
    name = f"volspike_mig_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_migrate_creates_database_and_is_a_noop_the_second_time(fresh_url: str) -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(versions) and versions[0] == 1
    assert await migrate(fresh_url) == versions
    assert await migrate(fresh_url) == []
    conn = await asyncpg.connect(fresh_url)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == versions
        assert await conn.fetchval("SELECT to_regclass('alerts') IS NOT NULL")
        # never reconciled: the bot catches up at its first start (bot.payments.scheduler.catch_up)
        assert await conn.fetchrow("SELECT next_offset, last_run_at FROM star_reconciliation") == (0, None)
    finally:
        await conn.close()


async def test_concurrent_migrate_runs_apply_each_migration_once(fresh_url: str) -> None:
    results = await asyncio.gather(*(migrate(fresh_url) for _ in range(4)))
    applied = [v for result in results for v in result]
    assert sorted(applied) == [m.version for m in load_migrations()]
    conn = await asyncpg.connect(fresh_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(load_migrations())
    finally:
        await conn.close()


async def test_failed_migration_rolls_back_and_is_not_recorded(fresh_url: str, monkeypatch) -> None:
    from db import migrate as module

    good = load_migrations()
    broken = [*good, module.Migration(999, "broken", "CREATE TABLE half_done (id int); SELECT 1/0;")]
    monkeypatch.setattr(module, "load_migrations", lambda: broken)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(fresh_url)
    conn = await asyncpg.connect(fresh_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == good[-1].version
    finally:
        await conn.close()
