"""What a deployment has after 30 days, made with `generate_series` (no row-by-row inserts): the
data set of the steady-state bench (`bench/steady_state.py`, full scale) and of the query-plan
tests (`tests/test_query_plans.py`, a modest scale with the same skew).

Users (10 % elite, 20 % pro, 70 % free; 30 % with a watchlist, own thresholds for 30 % of the
paid ones, quiet hours for some), symbols, about 100 alerts a day (3 SPIKEs for every HALF and
FULL update) with one delivery row per recipient as the fan-out rules give it (every user gets
the SPIKEs, elite users the updates; `stride` thins that out for a smaller set), almost all of
them `sent`, minute candles with their hourly roll-ups and one mark snapshot per minute for the
`candle_symbols`, payments and tier history for the paid users, finished admin broadcasts.

Every timestamp is relative to `anchor` (the data set's "now"). The delivery rows cover one day
more than the retention window: that day is what the hourly retention job finds expired.
Large tables are loaded without their secondary indexes and foreign keys, which are built
afterwards in one pass each (much faster than maintaining them row by row).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import asyncpg

GENERATOR_VERSION = 1  # bump when the SQL below changes: a stored data set is then rebuilt


@dataclass(frozen=True, slots=True)
class Scale:
    users: int = 10_000
    symbols: int = 600
    candle_symbols: int = 600  # symbols with stored minutes and mark snapshots
    days: int = 30  # history of candles, marks and alerts
    alerts_per_day: int = 100
    stride: int = 1  # a user gets an alert's row when (user + alert) % stride == 0
    candle_days: int | None = None  # days of minutes (default: `days`)

    def fingerprint(self) -> str:
        text = repr((GENERATOR_VERSION, sorted(asdict(self).items())))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


FULL = Scale()
FIRST_USER = 10_000_000


def symbol_name(i: int) -> str:
    """The i-th symbol (1-based) of the data set: BTCUSDT, ETHUSDT, then C0003USDT, ..."""
    return {1: "BTCUSDT", 2: "ETHUSDT"}.get(i, f"C{i:04d}USDT")


_SYMBOL = "CASE {i} WHEN 1 THEN 'BTC' WHEN 2 THEN 'ETH' ELSE 'C' || lpad(({i})::text, 4, '0') END"

SYMBOLS = f"""
INSERT INTO symbols (symbol, base_asset, quote_asset, contract_type, status, active, onboard_date,
                     price_precision)
SELECT {_SYMBOL.format(i="i")} || 'USDT', {_SYMBOL.format(i="i")}, 'USDT', 'PERPETUAL', 'TRADING', true,
       $1::timestamptz - interval '400 days', 4
FROM generate_series(1, $2::int) AS i
"""

# Tier by i % 10: 0 elite, 1-2 pro, 3-9 free. Paid tiers expire in the coming month.
USERS = f"""
INSERT INTO users (id, username, first_name, language, tier, tier_expires_at, created_at,
                   last_seen_at, bot_started_at)
SELECT {FIRST_USER} + i, 'user' || i, 'User ' || i,
       (ARRAY['en', 'ru', 'es', 'tr', 'uk'])[1 + i % 5],
       CASE WHEN i % 10 = 0 THEN 'elite' WHEN i % 10 < 3 THEN 'pro' ELSE 'free' END,
       CASE WHEN i % 10 < 3 THEN $1::timestamptz + (1 + i % 30) * interval '1 day' END,
       $1::timestamptz - interval '60 days' + (i % 1000) * interval '1 minute',
       $1::timestamptz - (i % 720) * interval '1 hour',
       $1::timestamptz - interval '60 days' + (i % 1000) * interval '1 minute'
FROM generate_series(1, $2::int) AS i
"""

# 30 % with a watchlist (the tens digit of i below 3: independent of the tier, which is i's last
# digit), half of them watchlist-only; the paid ones among them with own thresholds; every
# seventh paid user with quiet hours.
WATCHING = "(i / 10) % 10 < 3"
USER_SETTINGS = f"""
INSERT INTO user_settings (user_id, spike_multiple, min_quote_volume, watchlist_only, quiet_start,
                           quiet_end, timezone)
SELECT {FIRST_USER} + i,
       CASE WHEN i % 10 < 3 AND {WATCHING} THEN 5.0 END,
       CASE WHEN i % 10 < 3 AND {WATCHING} THEN 2000000.0 END,
       {WATCHING} AND (i / 100) % 2 = 0,
       CASE WHEN i % 10 < 3 AND i % 7 = 0 THEN time '23:00' END,
       CASE WHEN i % 10 < 3 AND i % 7 = 0 THEN time '07:00' END,
       CASE WHEN i % 7 = 0 THEN 'Europe/Berlin' ELSE 'UTC' END
FROM generate_series(1, $1::int) AS i
"""

WATCHLISTS = f"""
INSERT INTO watchlists (user_id, symbol, added_at)
SELECT {FIRST_USER} + i, {_SYMBOL.format(i="1 + (i + k * 37) % $2::int")} || 'USDT',
       $3::timestamptz - interval '20 days'
FROM generate_series(1, $1::int) AS i, generate_series(0, 4) AS k
WHERE {WATCHING}
ON CONFLICT DO NOTHING
"""

# Alert i at anchor - days + (i + 0.5) * day / alerts_per_day; symbols spread by a prime step, so
# no (symbol, hour, type) repeats.
ALERTS = f"""
INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume, previous_volume,
                    volume_ratio, price, funding_rate, published_at, created_at, fanned_out_at)
SELECT {_SYMBOL.format(i="s")} || 'USDT', {_SYMBOL.format(i="s")}, t, date_trunc('hour', at), at,
       5e6 + (i % 100) * 1e5, (5e6 + (i % 100) * 1e5) / (3 + i % 17), 3 + i % 17, 100 + i % 50, 0.0001,
       at + interval '5 ms', at, at + interval '50 ms'
FROM generate_series(0, $2::int * $3::int - 1) AS i,
     LATERAL (SELECT $1::timestamptz - $2::int * interval '1 day'
                     + (i + 0.5) * interval '1 day' / $3::int AS at,
                     1 + (i::bigint * 7919) % $4::int AS s,
                     (ARRAY['SPIKE', 'SPIKE', 'SPIKE', 'HALF_UPDATE', 'FULL_UPDATE'])[1 + i % 5] AS t) x
ORDER BY i
"""

# A recipient's priority and due time by tier, as the fan-out gives them: `p`, in a statement that
# joins alerts `a` to users `u`.
TIER_PRIORITY_AND_DUE = """CROSS JOIN LATERAL (
    SELECT CASE u.tier WHEN 'elite' THEN 0 WHEN 'pro' THEN 1 ELSE 2 END AS priority,
           a.detected_at + CASE u.tier WHEN 'elite' THEN interval '0' WHEN 'pro' THEN interval '5 minutes'
                                       ELSE interval '15 minutes' END AS due_at
) p"""

# One row per recipient: SPIKEs to everyone, updates to elite users (their tier's delay and
# priority). Almost all sent; a few skipped, blocked or failed. Rows of the day before the history
# are the expired day. Nothing is pending: a reused data set must not hand the sender work.
DELIVERIES = f"""
INSERT INTO deliveries (alert_id, chat_id, priority, status, attempts, due_at, sent_at, message_id,
                        error, created_at, updated_at)
SELECT a.id, u.id, p.priority, s.status, CASE WHEN s.status = 'pending' THEN 0 ELSE 1 END,
       p.due_at, CASE WHEN s.status = 'sent' THEN p.due_at + interval '200 ms' END,
       CASE WHEN s.status = 'sent' THEN a.id * 100000 + u.id % 100000 END,
       CASE WHEN s.status = 'skipped' THEN 'quiet hours' WHEN s.status = 'failed' THEN 'Bad Request' END,
       a.detected_at + interval '60 ms', p.due_at + interval '200 ms'
FROM alerts a
JOIN users u ON (u.id + a.id) % $1::int = 0 AND (a.alert_type = 'SPIKE' OR u.tier = 'elite')
{TIER_PRIORITY_AND_DUE}
CROSS JOIN LATERAL (
    SELECT CASE WHEN (u.id + a.id) % 101 = 0 THEN 'skipped'
                WHEN (u.id + a.id) % 307 = 0 THEN 'failed'
                WHEN (u.id + a.id) % 1009 = 0 THEN 'blocked'
                ELSE 'sent' END AS status
) s
WHERE a.id BETWEEN $2 AND $3
ORDER BY a.id, p.priority, u.id
"""

# The day of alerts older than the history, whose rows are the expired day (not in `alerts` by
# the history above: a copy of the first day's alerts, one day earlier).
EXPIRED_DAY_ALERTS = """
INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume, previous_volume,
                    volume_ratio, price, funding_rate, published_at, created_at, fanned_out_at)
SELECT symbol, asset, alert_type, hour_ts - interval '1 day', detected_at - interval '1 day',
       current_volume, previous_volume, volume_ratio, price, funding_rate,
       published_at - interval '1 day', created_at - interval '1 day', fanned_out_at - interval '1 day'
FROM alerts WHERE detected_at < $1::timestamptz - ($2::int - 1) * interval '1 day'
ORDER BY id
"""

ALERT_IDS = "SELECT min(id), max(id) FROM alerts"
EXPIRED_DAY_IDS = """
SELECT min(id), max(id) FROM alerts WHERE detected_at < $1::timestamptz - $2::int * interval '1 day'
"""

# A smooth, symbol-dependent walk: cheap to compute, never negative, every minute different.
CANDLES_DAY = f"""
INSERT INTO candles_1m (symbol, open_time, open, high, low, close, volume, quote_volume, trades,
                        taker_buy_volume, taker_buy_quote)
SELECT {_SYMBOL.format(i="s")} || 'USDT', t, p, p * 1.002, p * 0.998, p * (1 + 0.001 * sin(m)),
       v, v * p, 50 + (m + s) % 200, v / 2, v * p / 2
FROM generate_series(0, 1439) AS m,
     generate_series(1, $2::int) AS s,
     LATERAL (SELECT $1::timestamptz + m * interval '1 minute' AS t,
                     (10 + s) * (1 + 0.05 * sin((m + 1440 * extract(doy FROM $1::timestamptz)) / 500.0 + s))
                         AS p,
                     1000 + 500 * (1 + cos(m / 37.0 + s)) AS v) x
ORDER BY 2, 1
"""

HOURS_FROM_MINUTES = """
INSERT INTO candles_1h (symbol, open_time, open, high, low, close, volume, quote_volume, trades,
                        taker_buy_volume, taker_buy_quote)
SELECT b.symbol, b.bucket, b.open, b.high, b.low, b.close, b.volume, b.quote_volume, b.trades,
       b.taker_buy_volume, b.taker_buy_quote
FROM symbols s
CROSS JOIN LATERAL candle_bins('candles_1m', interval '1 hour', ARRAY[s.symbol],
                               ARRAY[$1::timestamptz], ARRAY[$2::timestamptz]) b
ORDER BY 1, 2
"""

MARKS_DAY = f"""
INSERT INTO mark_snapshots (symbol, ts, mark_price, index_price, funding_rate, next_funding_time)
SELECT {_SYMBOL.format(i="s")} || 'USDT', $1::timestamptz + m * interval '1 minute',
       (10 + s) * (1 + 0.05 * sin(m / 500.0 + s)), (10 + s) * (1 + 0.05 * sin(m / 500.0 + s)),
       0.0001, date_trunc('hour', $1::timestamptz) + (m / 480 + 1) * interval '8 hours'
FROM generate_series(0, 1439) AS m, generate_series(1, $2::int) AS s
ORDER BY 2, 1
"""

PAYMENTS = f"""
INSERT INTO payments (user_id, provider, provider_charge_id, amount, currency, tier, period_days,
                      created_at, kind, tier_before, tier_after, expires_after)
SELECT {FIRST_USER} + i, CASE WHEN i % 2 = 0 THEN 'stars' ELSE 'stripe' END, 'charge-' || i || '-' || k,
       CASE WHEN i % 10 = 0 THEN 1500 ELSE 500 END, CASE WHEN i % 2 = 0 THEN 'XTR' ELSE 'USD' END,
       CASE WHEN i % 10 = 0 THEN 'elite' ELSE 'pro' END, 30,
       $1::timestamptz - (30 * k + i % 30) * interval '1 day', 'pass', 'free',
       CASE WHEN i % 10 = 0 THEN 'elite' ELSE 'pro' END,
       $1::timestamptz + (1 + i % 30 - 30 * k) * interval '1 day'
FROM generate_series(1, $2::int) AS i, generate_series(0, 1) AS k
WHERE i % 10 < 3
"""

TIER_HISTORY = """
INSERT INTO tier_history (user_id, tier_before, expires_before, tier_after, expires_after, cause,
                          payment_id, created_at)
SELECT user_id, 'free', NULL, tier, expires_after, CASE WHEN provider = 'stars' THEN 'stars_payment'
       ELSE 'stripe_payment' END, id, created_at
FROM payments ORDER BY id
"""

BROADCASTS = """
WITH b AS (
    INSERT INTO broadcasts (admin_id, text, status, total, sent, created_at, finished_at)
    SELECT 1, 'News ' || k, 'done', $2::int, $2::int, $1::timestamptz - k * interval '7 days',
           $1::timestamptz - k * interval '7 days' + interval '10 minutes'
    FROM generate_series(1, 4) AS k
    RETURNING id
)
INSERT INTO broadcast_recipients (broadcast_id, user_id, status)
SELECT b.id, u.id, 'sent' FROM b CROSS JOIN users u
"""

INDEXES_OF = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
WHERE i.indrelid = $1::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""
FOREIGN_KEYS_OF = """
SELECT conname, pg_get_constraintdef(oid) AS definition
FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'
"""
UNIQUE_OF = """
SELECT conname, pg_get_constraintdef(oid) AS definition
FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('p', 'u')
"""
REFERENCING = """
SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS definition
FROM pg_constraint WHERE confrelid = $1::regclass AND contype = 'f'
"""


@asynccontextmanager
async def bare(conn: asyncpg.Connection, table: str) -> AsyncIterator[None]:
    """`table` without its indexes, keys and foreign keys (also those pointing at it) while the
    block loads it; all rebuilt afterwards, each in one pass."""
    indexes = await conn.fetch(INDEXES_OF, table)
    own_fks = await conn.fetch(FOREIGN_KEYS_OF, table)
    keys = await conn.fetch(UNIQUE_OF, table)
    referencing = await conn.fetch(REFERENCING, table)
    for fk in referencing:
        await conn.execute(f'ALTER TABLE {fk["tbl"]} DROP CONSTRAINT "{fk["conname"]}"')
    for fk in own_fks:
        await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{fk["conname"]}"')
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    for key in keys:
        await conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{key["conname"]}"')
    yield
    await conn.execute("SET maintenance_work_mem = '512MB'")
    for key in keys:
        await conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{key["conname"]}" {key["definition"]}')
    for index in indexes:
        await conn.execute(index["definition"])
    for fk in own_fks:
        await conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{fk["conname"]}" {fk["definition"]}')
    for fk in referencing:
        await conn.execute(f'ALTER TABLE {fk["tbl"]} ADD CONSTRAINT "{fk["conname"]}" {fk["definition"]}')


Progress = Callable[[str, float], None]


def _quiet(step: str, seconds: float) -> None:
    pass


async def build(
    conn: asyncpg.Connection,
    scale: Scale,
    anchor: datetime,
    progress: Progress = _quiet,
    *,
    history: bool = True,
) -> dict[str, float]:
    """Fill a freshly migrated, empty database; returns seconds per step. `history=False`: the
    users, their settings and watchlists and the symbols only (a deployment's first day: the
    empty database the steady state is compared with)."""
    steps: dict[str, float] = {}

    async def step(name: str, sql: str, *args: object) -> None:
        started = time.monotonic()
        await conn.execute(sql, *args)
        steps[name] = steps.get(name, 0.0) + time.monotonic() - started
        progress(name, steps[name])

    await conn.execute("SET synchronous_commit = off")
    await step("symbols", SYMBOLS, anchor, scale.symbols)
    await step("users", USERS, anchor, scale.users)
    await step("user_settings", USER_SETTINGS, scale.users)
    await step("watchlists", WATCHLISTS, scale.users, scale.symbols, anchor)
    if not history:
        await step("analyze", "ANALYZE")
        return steps
    await step("alerts", ALERTS, anchor, scale.days, scale.alerts_per_day, scale.symbols)
    await step("alerts", EXPIRED_DAY_ALERTS, anchor, scale.days)
    first, last = await conn.fetchrow(ALERT_IDS)
    async with bare(conn, "deliveries"):
        chunk = max(1, scale.alerts_per_day)
        for start in range(first, last + 1, chunk):
            await step("deliveries", DELIVERIES, scale.stride, start, start + chunk - 1)
        started = time.monotonic()
    steps["deliveries indexes"] = time.monotonic() - started
    progress("deliveries indexes", steps["deliveries indexes"])

    candle_days = scale.candle_days or scale.days
    midnight = anchor.replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = midnight - timedelta(days=candle_days - 1)
    await conn.execute("SELECT ensure_candle_partitions($1::date, $2::date)", first_day.date(), anchor.date())
    await conn.execute("ALTER TABLE candles_1m DISABLE TRIGGER USER")
    try:
        for day in range(candle_days):
            await step("candles_1m", CANDLES_DAY, first_day + timedelta(days=day), scale.candle_symbols)
    finally:
        await conn.execute("ALTER TABLE candles_1m ENABLE TRIGGER USER")
    await step("candles_1h", HOURS_FROM_MINUTES, first_day, midnight + timedelta(days=1))
    async with bare(conn, "mark_snapshots"):
        for day in range(candle_days):
            await step("mark_snapshots", MARKS_DAY, first_day + timedelta(days=day), scale.candle_symbols)
        started = time.monotonic()
    steps["mark_snapshots indexes"] = time.monotonic() - started
    await step("payments", PAYMENTS, anchor, scale.users)
    await step("tier_history", TIER_HISTORY)
    await step("broadcasts", BROADCASTS, anchor, scale.users)
    await step("analyze", "VACUUM ANALYZE")
    return steps


async def refill_expired_day(conn: asyncpg.Connection, scale: Scale, anchor: datetime) -> int:
    """Write again the delivery rows of the expired day (after the retention bench deleted them)."""
    first, last = await conn.fetchrow(EXPIRED_DAY_IDS, anchor, scale.days)
    if first is None:
        return 0
    status: str = await conn.execute(DELIVERIES, scale.stride, first, last)
    return int(status.rsplit(" ", 1)[-1])
