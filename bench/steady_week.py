"""Autovacuum over a simulated week (issue #18): the deployment's daily churn of `deliveries` and
`candles_1m`, compressed, on the steady-state data set (or the first day's database), with the
dead-tuple share of each table sampled throughout.

Each simulated day writes what a day of the deployment writes, at its volume:

- `deliveries`: the day's alerts (`alerts_per_day`, the data set's mix) and one row per
  recipient (the fan-out rules of `bench.steady_data`), inserted `pending`, then claimed
  (`sending`) and resolved (`sent`), ten alerts' rows a statement (the sender takes 64 + 64 rows
  a statement; a row leaves the same dead tuples either way: one per update); then the retention
  job's batches (5,000 rows by primary key) delete the previous day's rows. So every day
  inserts, updates twice and deletes a day's rows, and the table keeps its size.
- `candles_1m`: a day of minutes of every candle symbol into the next day's partition, in
  statements of `candle_minutes` minutes, then the previous day's partition is dropped (what
  retention does to candles). The minutes are written without the hourly roll-up trigger: on
  the month's data it costs seconds a statement, which would make the week take hours, and
  `candles_1h` is not what the row measures (its hours are updated in place, HOT, by design).

The run's own days lie after the data set's anchor and are removed at the end: the data set is
left as it was.

Autovacuum. When the server runs it (`autovacuum = on`), it is what cleans. This project's
shared test server runs with `autovacuum = off` (a CI setting, `conf.d/90-ci.conf`), and a bench
must not change a shared server's configuration; the bench then launches what autovacuum would:
every `naptime` seconds of the compressed day it reads each table's `n_dead_tup` and runs
`VACUUM` on a table whose dead tuples pass autovacuum's trigger (`autovacuum_vacuum_threshold +
autovacuum_vacuum_scale_factor x reltuples`, the table's own storage parameters first, as
autovacuum reads them), with autovacuum's cost limits (`vacuum_cost_delay` = the autovacuum
delay, `vacuum_cost_limit` = its limit), up to `autovacuum_max_workers` tables at once. The
row says which of the two cleaned.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from bench.steady_data import _SYMBOL, TIER_PRIORITY_AND_DUE, Scale

WEEK_ALERTS = f"""
INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume, previous_volume,
                    volume_ratio, price, funding_rate, published_at, created_at, fanned_out_at)
SELECT {_SYMBOL.format(i="s")} || 'USDT', {_SYMBOL.format(i="s")}, t, date_trunc('hour', at), at,
       5e6 + (i % 100) * 1e5, (5e6 + (i % 100) * 1e5) / (3 + i % 17), 3 + i % 17, 100 + i % 50, 0.0001,
       at + interval '5 ms', at, at + interval '50 ms'
FROM generate_series(0, $2::int - 1) AS i,
     LATERAL (SELECT $1::timestamptz + (i + 0.5) * interval '1 day' / $2::int AS at,
                     1 + (i::bigint * 7919) % $3::int AS s,
                     (ARRAY['SPIKE', 'SPIKE', 'SPIKE', 'HALF_UPDATE', 'FULL_UPDATE'])[1 + i % 5] AS t) x
ORDER BY i
RETURNING id
"""

# One alert's rows, as the fan-out writes them: pending, due by tier.
WEEK_FAN_OUT = f"""
INSERT INTO deliveries (alert_id, chat_id, priority, status, attempts, due_at, created_at, updated_at)
SELECT a.id, u.id, p.priority, 'pending', 0, p.due_at, a.detected_at + interval '60 ms',
       a.detected_at + interval '60 ms'
FROM alerts a
JOIN users u ON (u.id + a.id) % $2::int = 0 AND (a.alert_type = 'SPIKE' OR u.tier = 'elite')
{TIER_PRIORITY_AND_DUE}
WHERE a.id = ANY($1::bigint[])
ORDER BY a.id, p.priority, u.id
"""

# The claim's and the resolve's row changes (the sender's statements take 64 + 64 rows at a time;
# the dead tuples a row leaves are the same: one per update).
WEEK_CLAIM = """
UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = due_at
WHERE alert_id = ANY($1::bigint[]) AND status = 'pending'
"""
WEEK_RESOLVE = """
UPDATE deliveries SET status = 'sent', sent_at = due_at + interval '200 ms', message_id = id,
                      updated_at = due_at + interval '200 ms'
WHERE alert_id = ANY($1::bigint[]) AND status = 'sending'
"""
# Retention's batch shape (db/retention.py), on the run's own previous day.
WEEK_DELETE = """
DELETE FROM deliveries
WHERE id = ANY (ARRAY(SELECT id FROM deliveries WHERE alert_id = ANY($1::bigint[]) LIMIT $2))
"""

WEEK_CANDLES = f"""
INSERT INTO candles_1m (symbol, open_time, open, high, low, close, volume, quote_volume, trades,
                        taker_buy_volume, taker_buy_quote)
SELECT {_SYMBOL.format(i="s")} || 'USDT', t, p, p * 1.002, p * 0.998, p * (1 + 0.001 * sin(m)),
       v, v * p, 50 + (m + s) % 200, v / 2, v * p / 2
FROM generate_series($2::int, $3::int - 1) AS m,
     generate_series(1, $4::int) AS s,
     LATERAL (SELECT $1::timestamptz + m * interval '1 minute' AS t,
                     (10 + s) * (1 + 0.05 * sin(m / 500.0 + s)) AS p,
                     1000 + 500 * (1 + cos(m / 37.0 + s)) AS v) x
ORDER BY 2, 1
"""

# Dead-tuple share per table (the partitions of candles_1m summed under its name).
DEAD_SHARE = """
SELECT coalesce(p.relname, s.relname) AS name, sum(s.n_live_tup)::bigint AS live,
       sum(s.n_dead_tup)::bigint AS dead
FROM pg_stat_user_tables s
LEFT JOIN pg_inherits i ON i.inhrelid = s.relid
LEFT JOIN pg_class p ON p.oid = i.inhparent
WHERE coalesce(p.relname, s.relname) = ANY($1::text[])
GROUP BY 1
"""

# What autovacuum compares (per relation: the partitions of candles_1m each on their own).
VACUUM_DUE = """
SELECT s.relid::regclass::text AS rel, s.n_dead_tup AS dead,
       coalesce((SELECT option_value::float8 FROM pg_options_to_table(c.reloptions)
                 WHERE option_name = 'autovacuum_vacuum_threshold'),
                current_setting('autovacuum_vacuum_threshold')::float8)
       + coalesce((SELECT option_value::float8 FROM pg_options_to_table(c.reloptions)
                   WHERE option_name = 'autovacuum_vacuum_scale_factor'),
                  current_setting('autovacuum_vacuum_scale_factor')::float8)
         * greatest(c.reltuples, 0) AS trigger_at
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
LEFT JOIN pg_inherits i ON i.inhrelid = s.relid
LEFT JOIN pg_class p ON p.oid = i.inhparent
WHERE coalesce(p.relname, s.relname) = ANY($1::text[])
"""

TABLES = ["deliveries", "candles_1m", "alerts", "delivery_day_counts"]
SHOWN = ["deliveries", "candles_1m"]  # in the row; the others in the log
ALERTS_PER_STATEMENT = 10  # about 66,000 delivery rows a statement at full scale


@dataclass
class WeekResult:
    days: int
    seconds: float
    cleaner: str  # "autovacuum" or "emulated autovacuum (server: autovacuum = off)"
    max_share: dict[str, float] = field(default_factory=dict)  # table -> max dead share seen
    end_share: dict[str, float] = field(default_factory=dict)
    vacuums: dict[str, int] = field(default_factory=dict)  # table -> VACUUMs the emulation ran
    rows_per_day: dict[str, int] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return max((self.max_share[t] for t in SHOWN if t in self.max_share), default=float("nan"))


async def _shares(conn: asyncpg.Connection) -> dict[str, float]:
    out = {}
    for row in await conn.fetch(DEAD_SHARE, TABLES):
        total = row["live"] + row["dead"]
        out[row["name"]] = row["dead"] / total if total else 0.0
    return out


class _Emulated:
    """Autovacuum's launcher and workers, for a server running without them (see the module)."""

    def __init__(self, url: str, naptime: float, result: WeekResult) -> None:
        self.url, self.naptime, self.result = url, naptime, result
        self.running: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            workers = int(await conn.fetchval("SELECT current_setting('autovacuum_max_workers')"))
            while True:
                await asyncio.sleep(self.naptime)
                for row in await conn.fetch(VACUUM_DUE, TABLES):
                    rel = row["rel"]
                    if row["dead"] <= row["trigger_at"] or rel in self.running:
                        continue
                    if len(self.running) >= workers:
                        break
                    self.running[rel] = asyncio.create_task(self._vacuum(rel))
        finally:
            for task in self.running.values():
                task.cancel()
            await asyncio.gather(*self.running.values(), return_exceptions=True)
            await conn.close()

    async def _vacuum(self, rel: str) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            delay, limit = await conn.fetchrow(
                "SELECT current_setting('autovacuum_vacuum_cost_delay'), "
                "current_setting('autovacuum_vacuum_cost_limit')::int"
            )
            if limit < 0:
                limit = int(await conn.fetchval("SELECT current_setting('vacuum_cost_limit')"))
            await conn.execute(f"SET vacuum_cost_delay = '{delay}'")
            await conn.execute(f"SET vacuum_cost_limit = {limit}")
            with contextlib.suppress(asyncpg.UndefinedTableError):  # a partition dropped meanwhile
                await conn.execute(f"VACUUM {rel}")
            name = "candles_1m" if rel.startswith("candles_1m_") else rel
            self.result.vacuums[name] = self.result.vacuums.get(name, 0) + 1
        finally:
            await conn.close()
            self.running.pop(rel, None)


async def simulated_week(
    url: str,
    anchor: datetime,
    scale: Scale,
    *,
    days: int = 7,
    candle_minutes: int = 240,
    naptime: float = 1.0,
    say: Callable[[str], None] = print,
) -> WeekResult:
    """Run `days` compressed days of inserts, updates and deletes (see the module); the dead-tuple
    share of each table, sampled every half second, its maximum and its value at the end."""
    conn = await asyncpg.connect(url)
    sampler_conn = await asyncpg.connect(url)  # the background sampler's alone: one query at a time
    autovacuum_on = await conn.fetchval("SHOW autovacuum") == "on"
    result = WeekResult(
        days, 0.0, "autovacuum" if autovacuum_on else "emulated autovacuum (server: autovacuum = off)"
    )
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            for name, share in (await _shares(sampler_conn)).items():
                result.max_share[name] = max(result.max_share.get(name, 0.0), share)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    midnight = anchor.replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = midnight + timedelta(days=2)  # after anything a run or the anchor's day holds
    existing = {
        r["relname"]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'candles_1m'::regclass"
        )
    }
    made: list[str] = []
    alerts_by_day: list[list[int]] = []
    emulated = None if autovacuum_on else _Emulated(url, naptime, result)
    background = [asyncio.create_task(sample())]
    if emulated is not None:
        background.append(asyncio.create_task(emulated.run()))
    began = time.perf_counter()
    try:
        for d in range(days):
            day = first_day + timedelta(days=d)
            day_began = time.perf_counter()
            ids = [r["id"] for r in await conn.fetch(WEEK_ALERTS, day, scale.alerts_per_day, scale.symbols)]
            alerts_by_day.append(ids)
            inserted = 0
            for start in range(0, len(ids), ALERTS_PER_STATEMENT):
                chunk = ids[start : start + ALERTS_PER_STATEMENT]
                status = await conn.execute(WEEK_FAN_OUT, chunk, scale.stride)
                inserted += int(status.rsplit(" ", 1)[-1])
                await conn.execute(WEEK_CLAIM, chunk)
                await conn.execute(WEEK_RESOLVE, chunk)
            result.rows_per_day["deliveries"] = inserted
            if d > 0:
                while int((await conn.execute(WEEK_DELETE, alerts_by_day[d - 1], 5000)).rsplit(" ", 1)[-1]):
                    pass
                await conn.execute("DELETE FROM alerts WHERE id = ANY($1::bigint[])", alerts_by_day[d - 1])
            await conn.execute("SELECT ensure_candle_partitions($1::date, $1::date)", day.date())
            part = f"candles_1m_{day:%Y%m%d}"
            if part not in existing:
                made.append(part)
            # Without the roll-up trigger (its hours are not what this row measures, and it costs
            # seconds a statement on the month's minutes): candles_1m's own churn.
            await conn.execute("SET session_replication_role = replica")
            try:
                for m in range(0, 1440, candle_minutes):
                    await conn.execute(
                        WEEK_CANDLES, day, m, min(1440, m + candle_minutes), scale.candle_symbols
                    )
            finally:
                await conn.execute("SET session_replication_role = DEFAULT")
            result.rows_per_day["candles_1m"] = 1440 * scale.candle_symbols
            if d > 0 and made and made[0] != part:
                await _drop_day(conn, made.pop(0), day - timedelta(days=1))
            shares = await _shares(conn)  # the sampler's connection is busy with its own reads
            say(
                f"    day {d + 1}: {time.perf_counter() - day_began:.0f} s, dead share "
                + ", ".join(f"{t} {shares.get(t, 0.0):.1%}" for t in TABLES)
            )
        await asyncio.sleep(2 * naptime)  # the last day's counts reach the statistics
        result.seconds = time.perf_counter() - began
        result.end_share = await _shares(conn)
        for name, share in result.end_share.items():
            result.max_share[name] = max(result.max_share.get(name, 0.0), share)
    finally:
        stop.set()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        # the data set as it was: the run's alerts (their rows go with them) and partitions
        for ids in alerts_by_day:
            await conn.execute("DELETE FROM alerts WHERE id = ANY($1::bigint[])", ids)
        for part in made:
            await conn.execute(f"DROP TABLE IF EXISTS {part}")
        await conn.execute("DELETE FROM candles_1h WHERE open_time >= $1", first_day)
        if not autovacuum_on:  # what the week's deletes left: the next run starts as this one did
            for table in ("deliveries", "alerts", "delivery_day_counts", "candles_1h"):
                await conn.execute(f"VACUUM {table}")
        await sampler_conn.close()
        await conn.close()
    return result


async def _drop_day(conn: asyncpg.Connection, part: str, day: datetime) -> None:
    """Retention of a day of candles: its partition dropped, its hours deleted."""
    await conn.execute(f"DROP TABLE IF EXISTS {part}")
    await conn.execute(
        "DELETE FROM candles_1h WHERE open_time >= $1 AND open_time < $1 + interval '1 day'", day
    )
