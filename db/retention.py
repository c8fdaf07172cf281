"""Deleting what has outlived its retention, in batches: deliveries, the recipient rows of
finished broadcasts and mark snapshots.

Each batch is its own short statement (a few thousand rows, oldest first, through an index),
so a table with millions of expired rows is emptied without one long transaction holding
locks or bloating WAL while the sender and the candle writer keep working.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.tasks import raise_if_cancelling

Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

DEFAULT_BATCH = 5000

# `deliveries_created_idx` (migration 009) finds the oldest rows.
# The batch's ids as an array: deleted through the primary key (an `id IN (subquery)` may be
# planned as a hash join over the whole table).
DELETE_DELIVERIES = """
DELETE FROM deliveries
WHERE id = ANY (ARRAY(SELECT id FROM deliveries WHERE created_at < $1 ORDER BY created_at LIMIT $2))
"""

# A finished broadcast keeps its row and its totals (stored when it ended); only its recipients
# go. Broadcasts are few, so the join starts from them and the primary key finds the rows.
DELETE_BROADCAST_RECIPIENTS = """
DELETE FROM broadcast_recipients
WHERE (broadcast_id, user_id) IN (
    SELECT r.broadcast_id, r.user_id
    FROM broadcasts b JOIN broadcast_recipients r ON r.broadcast_id = b.id
    WHERE b.status IN ('done', 'cancelled') AND b.finished_at < $1
    LIMIT $2
)
"""

# The per-day delivery counters of `/stats` (migration 122) for the days whose rows are all gone:
# every row of a day before the cutoff's date was created before the cutoff, so those counters
# add up to nothing and only take space. The primary key starts with `day`.
DELETE_DAY_COUNTS = """
DELETE FROM delivery_day_counts WHERE day < ($1::timestamptz AT TIME ZONE 'UTC')::date
"""

# `mark_snapshots_ts_idx` finds the oldest rows.
DELETE_MARK_SNAPSHOTS = """
DELETE FROM mark_snapshots
WHERE (symbol, ts) IN (SELECT symbol, ts FROM mark_snapshots WHERE ts < $1 ORDER BY ts LIMIT $2)
"""


async def _in_batches(
    conn: Executor, sql: str, cutoff: datetime, batch: int, between: Callable[[], Awaitable[None]] | None
) -> int:
    total = 0
    while True:
        raise_if_cancelling()
        status: str = await conn.execute(sql, cutoff, batch)
        deleted = int(status.rsplit(" ", 1)[-1])
        total += deleted
        if deleted < batch:
            return total
        if between is not None:
            await between()


async def delete_deliveries_before(
    conn: Executor,
    cutoff: datetime,
    *,
    batch: int = DEFAULT_BATCH,
    between: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Delete delivery rows created before `cutoff`, `batch` rows per statement; how many.
    `between` is awaited between two full batches (to yield to other work)."""
    return await _in_batches(conn, DELETE_DELIVERIES, cutoff, batch, between)


async def delete_broadcast_recipients_before(
    conn: Executor,
    cutoff: datetime,
    *,
    batch: int = DEFAULT_BATCH,
    between: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Delete the recipient rows of broadcasts that finished (done or cancelled) before `cutoff`;
    how many. The broadcasts themselves, with their totals, are kept."""
    return await _in_batches(conn, DELETE_BROADCAST_RECIPIENTS, cutoff, batch, between)


async def delete_mark_snapshots_before(
    conn: Executor,
    cutoff: datetime,
    *,
    batch: int = DEFAULT_BATCH,
    between: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Delete mark snapshots older than `cutoff`, `batch` rows per statement; how many."""
    return await _in_batches(conn, DELETE_MARK_SNAPSHOTS, cutoff, batch, between)


async def delete_day_counts_before(conn: Executor, cutoff: datetime) -> int:
    """Delete the delivery day counters of the UTC days wholly before `cutoff`; how many rows."""
    status: str = await conn.execute(DELETE_DAY_COUNTS, cutoff)
    return int(status.rsplit(" ", 1)[-1])
