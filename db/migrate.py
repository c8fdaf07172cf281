"""Numbered SQL migrations, applied in order, each in a transaction, under an advisory lock."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from db.pool import connect_once

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every `volspike migrate`.
MIGRATION_LOCK_ID = 0x766F6C73  # "vols"

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
APPLIED = "SELECT version FROM schema_migrations"
HAS_MIGRATIONS_TABLE = "SELECT to_regclass('schema_migrations') IS NOT NULL"
RECORD = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = $1"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    found: list[Migration] = []
    folder = resources.files("db").joinpath("migrations")
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers: {versions}")
    return found


async def pending_versions(conn: asyncpg.Connection) -> list[int]:
    """The versions shipped with this build that the database has not applied yet."""
    done: set[int] = set()
    if await conn.fetchval(HAS_MIGRATIONS_TABLE):
        done = {row["version"] for row in await conn.fetch(APPLIED)}
    return [m.version for m in load_migrations() if m.version not in done]


async def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist. Returns True if created."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        return False
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    conn = await connect_once(admin_url)
    try:
        if await conn.fetchval(DATABASE_EXISTS, name):
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            # CREATE DATABASE takes no parameters; the identifier is quoted above.
            await conn.execute(f"CREATE DATABASE {quoted}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            # another `migrate` created it between our check and our CREATE
            return False
        log.info("created database", extra={"database": name})
        return True
    finally:
        await conn.close()


async def migrate(url: str) -> list[int]:
    """Apply pending migrations; returns the versions applied (empty when up to date)."""
    await ensure_database(url)
    conn = await connect_once(url)
    applied_now: list[int] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        try:
            await conn.execute(CREATE_TABLE)
            done = {row["version"] for row in await conn.fetch(APPLIED)}
            for migration in load_migrations():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(RECORD, migration.version, migration.name)
                applied_now.append(migration.version)
                log.info(
                    "applied migration", extra={"version": migration.version, "migration": migration.name}
                )
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    finally:
        await conn.close()
    return applied_now
