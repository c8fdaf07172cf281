"""Per-table autovacuum settings (migration 151): the steady bench's simulated week took
`deliveries` past a 20 % dead-tuple share with the default scale factor (21.4 %)."""

from __future__ import annotations


async def test_deliveries_are_vacuumed_at_five_percent_dead(db) -> None:
    options = await db.fetchval("SELECT reloptions FROM pg_class WHERE oid = 'deliveries'::regclass")
    assert "autovacuum_vacuum_scale_factor=0.05" in (options or [])
