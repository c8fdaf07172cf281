"""The delivery queue figures behind `volspike_delivery_queue_depth` and the oldest-pending alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from db.deliveries import queue_state
from tests.delivery_harness import add_alert


async def test_queue_state_counts_due_pending_rows_and_the_age_of_the_oldest(db: asyncpg.Pool) -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert await queue_state(db, now) == (0, 0.0)
    alert = await add_alert(db, now - timedelta(minutes=5))
    await db.execute(
        "INSERT INTO deliveries (alert_id, chat_id, status, due_at) VALUES "
        "($1, 1, 'pending', $2), ($1, 2, 'pending', $3), ($1, 3, 'pending', $4), ($1, 4, 'sent', $5)",
        alert.id,
        now - timedelta(seconds=90),  # due and waiting 90 s: the oldest
        now - timedelta(seconds=10),
        now + timedelta(minutes=10),  # a delayed tier's row, not due yet
        now - timedelta(hours=1),  # done: not in the queue
    )
    assert await queue_state(db, now) == (2, 90.0)
