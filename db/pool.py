"""The asyncpg pool, with JSON codecs and a bounded, clear connection failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import orjson

from core.errors import ServiceUnreachable
from db.unavailable import PG_UNAVAILABLE as PG_UNAVAILABLE  # re-exported: callers import it here

log = logging.getLogger(__name__)

T = TypeVar("T")

Pool = asyncpg.Pool
Connection = asyncpg.Connection


def host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`), which costs every pooled call a second round trip. asyncpg still rolls back a
    transaction left open before this runs. Safe because pooled code keeps no session state:
    settings are `SET LOCAL`, LISTEN and the leader's lock live on dedicated connections, a
    scheduled job's advisory lock is released before its pooled connection goes back (or the
    connection is closed: `db.job_locks.exclusive`), and the staging temp table is emptied at
    every commit."""


_UNREACHABLE = (OSError, asyncio.TimeoutError, asyncpg.CannotConnectNowError)


async def _retrying(url: str, open_: Callable[[], Awaitable[T]], attempts: int) -> T:
    """`open_()` retried a bounded number of times with backoff; then ServiceUnreachable."""
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            return await open_()
        except _UNREACHABLE as exc:
            if attempt == attempts:
                raise ServiceUnreachable(f"cannot reach PostgreSQL at {host_port(url)}") from exc
            log.warning("postgres not answering, retrying", extra={"attempt": attempt, "error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


async def connect_once(url: str, *, attempts: int = 5, timeout: float = 3.0) -> asyncpg.Connection:
    """One connection, retried a bounded number of times with backoff."""

    async def open_() -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(url, timeout=timeout)
        return conn

    return await _retrying(url, open_, attempts)


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10, attempts: int = 5) -> asyncpg.Pool:
    """Create the pool; PostgreSQL not answering after `attempts` raises ServiceUnreachable."""

    async def open_() -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_keep_session,
            timeout=3.0,
            command_timeout=60,
        )
        assert pool is not None
        return pool

    return await _retrying(url, open_, attempts)
