"""Outcomes of public SPIKE and EARLY alerts (`alert_outcomes`, migration 080): the alerts still
owed one, the minutes an outcome is computed from, the idempotent upsert, and the outcomes of a
page of alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.outcomes import Minute, Outcome

Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

# Public SPIKEs and EARLYs detected since $3 whose next horizon's candle (the one containing
# detection + horizon)
# closed by $1 + 1 min (= now - grace), with no outcome row or a row short of 4 h; oldest
# first, paged by (detected_at, id) after ($4, $5). `core.outcomes.passed_horizon`, in SQL.
PENDING = """
SELECT a.id, a.symbol, a.hour_ts, a.detected_at, a.price, o.horizon_minutes
FROM alerts a
LEFT JOIN alert_outcomes o ON o.alert_id = a.id
WHERE a.alert_type IN ('SPIKE', 'EARLY') AND a.level_multiple IS NULL  -- public SPIKEs and EARLYs
  AND a.detected_at >= $3::timestamptz
  AND a.detected_at < $1::timestamptz - interval '14 minutes'
  AND date_trunc('minute', a.detected_at) + make_interval(mins => CASE o.horizon_minutes
          WHEN 15 THEN 60 WHEN 60 THEN 240 WHEN 240 THEN NULL ELSE 15 END) <= $1::timestamptz
  AND (a.detected_at, a.id) > ($4::timestamptz, $5::bigint)
ORDER BY a.detected_at, a.id
LIMIT $2
"""

MINUTES = """
SELECT open_time, open, high, low, close, quote_volume, taker_buy_quote
FROM candles_1m
WHERE symbol = $1 AND open_time >= $2 AND open_time <= $3
"""

# A row only moves forward: a second runner (or a re-run) with the same or a shorter
# horizon changes nothing.
UPSERT = """
INSERT INTO alert_outcomes AS o (
    alert_id, horizon_minutes, taker_share, direction, direction_source,
    change_15m, change_1h, change_4h, btc_change_15m, btc_change_1h, btc_change_4h,
    mfe, mae, rel_mfe, rel_mae, computed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (alert_id) DO UPDATE SET
    horizon_minutes = EXCLUDED.horizon_minutes,
    taker_share = EXCLUDED.taker_share,
    direction = EXCLUDED.direction,
    direction_source = EXCLUDED.direction_source,
    change_15m = EXCLUDED.change_15m,
    change_1h = EXCLUDED.change_1h,
    change_4h = EXCLUDED.change_4h,
    btc_change_15m = EXCLUDED.btc_change_15m,
    btc_change_1h = EXCLUDED.btc_change_1h,
    btc_change_4h = EXCLUDED.btc_change_4h,
    mfe = EXCLUDED.mfe,
    mae = EXCLUDED.mae,
    rel_mfe = EXCLUDED.rel_mfe,
    rel_mae = EXCLUDED.rel_mae,
    computed_at = EXCLUDED.computed_at
WHERE o.horizon_minutes < EXCLUDED.horizon_minutes
"""

FOR_ALERTS = """
SELECT alert_id, horizon_minutes, taker_share, direction, direction_source,
       change_15m, change_1h, change_4h, btc_change_15m, btc_change_1h, btc_change_4h,
       mfe, mae, rel_mfe, rel_mae
FROM alert_outcomes
WHERE alert_id = ANY($1::bigint[])
"""


@dataclass(frozen=True, slots=True)
class PendingAlert:
    id: int
    symbol: str
    hour: datetime
    detected_at: datetime
    price: float
    stored_horizon: int | None


async def pending(
    conn: Executor,
    *,
    ready_before: datetime,
    since: datetime,
    limit: int,
    after: tuple[datetime, int] | None = None,
) -> list[PendingAlert]:
    """SPIKEs detected since `since` that may be owed a horizon by `ready_before`, oldest first."""
    after_time, after_id = after if after is not None else (since, 0)
    rows = await conn.fetch(PENDING, ready_before, limit, since, after_time, after_id)
    return [
        PendingAlert(r["id"], r["symbol"], r["hour_ts"], r["detected_at"], r["price"], r["horizon_minutes"])
        for r in rows
    ]


async def minutes(conn: Executor, symbol: str, first: datetime, last: datetime) -> dict[datetime, Minute]:
    """The symbol's stored 1m candles with first <= open time <= last, keyed by open time."""
    rows = await conn.fetch(MINUTES, symbol, first, last)
    return {
        r["open_time"]: Minute(
            r["open"], r["high"], r["low"], r["close"], r["quote_volume"], r["taker_buy_quote"]
        )
        for r in rows
    }


async def store(conn: Executor, alert_id: int, outcome: Outcome, now: datetime) -> bool:
    """Store the outcome unless one with the same or a longer horizon is there; whether it was."""
    status: str = await conn.execute(
        UPSERT,
        alert_id,
        outcome.horizon_minutes,
        outcome.taker_share,
        outcome.direction,
        outcome.direction_source,
        *outcome.changes,
        *outcome.btc_changes,
        outcome.mfe,
        outcome.mae,
        outcome.rel_mfe,
        outcome.rel_mae,
        now,
    )
    return status.endswith(" 1")


def _outcome(r: asyncpg.Record) -> Outcome:
    return Outcome(
        horizon_minutes=r["horizon_minutes"],
        taker_share=r["taker_share"],
        direction=r["direction"],
        direction_source=r["direction_source"],
        changes=(r["change_15m"], r["change_1h"], r["change_4h"]),
        btc_changes=(r["btc_change_15m"], r["btc_change_1h"], r["btc_change_4h"]),
        mfe=r["mfe"],
        mae=r["mae"],
        rel_mfe=r["rel_mfe"],
        rel_mae=r["rel_mae"],
    )


async def for_alerts(conn: Executor, ids: Sequence[int]) -> dict[int, Outcome]:
    """The stored outcomes of these alerts (an alert without one yet is absent)."""
    if not ids:
        return {}
    return {r["alert_id"]: _outcome(r) for r in await conn.fetch(FOR_ALERTS, list(ids))}
