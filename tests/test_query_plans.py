"""The hot statements keep reading through indexes as the tables grow: each is planned by
PostgreSQL (`EXPLAIN (FORMAT JSON)`, statistics from `ANALYZE`) against a modest data set with a
month's skew (about 200,000 delivery rows, almost all old and sent, a few due; 30 days of alerts,
minutes, hourly roll-ups and mark snapshots), and the plan must read no big table sequentially
and must use the index that matches the predicate.

`HOT` lists every hot statement in one place, with its parameters and the indexes it must use;
`COLD` lists the other statements of the same modules that read a big table, with the reason they
are not hot. A new statement in those modules that is in neither fails
`test_every_statement_on_a_big_table_is_planned_here_or_said_cold`: a hot statement without a
plan test is a gap.
"""

from __future__ import annotations

import importlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from bench.steady_data import FIRST_USER, Scale, build, symbol_name
from bot.delivery import recipients
from core.tiers import TIERS
from db import (
    admin,
    alert_feed,
    alert_history,
    alerts,
    candle_range,
    candles,
    deliveries,
    digest,
    retention,
    volume_curves,
)
from db.migrate import migrate
from tests.conftest import PG_ADMIN_URL

NOW = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)
SCALE = Scale(
    users=2_000, symbols=100, candle_symbols=40, days=30, candle_days=7, alerts_per_day=100, stride=20
)
BIG = ("deliveries", "alerts", "candles_1m", "candles_1h", "mark_snapshots")
# Where the statements that touch the big tables live.
MODULES = (
    "db.deliveries",
    "db.alert_feed",
    "db.alert_history",
    "db.alerts",
    "db.candles",
    "db.candle_range",
    "db.marks",
    "db.retention",
    "db.admin",
    "db.partitions",
    "bot.delivery.recipients",
    "db.volume_curves",
    "db.digest",
)
BTC = symbol_name(1)
ELITE_USER = FIRST_USER + 10  # i % 10 == 0: elite
# A symbol's alerts: either index on (symbol, ...) reads only them.
SYMBOL_INDEX = r"alerts_(public_)?symbol_detected_idx|alerts_public_key"  # both lead with the symbol


@dataclass(frozen=True, slots=True)
class Hot:
    sql: str
    args: Callable[[Context], tuple[object, ...]]
    indexes: tuple[str, ...]  # regular expressions; each must name an index in the plan
    names: tuple[str, ...] = field(default=())  # the module constants it covers (module.NAME)
    # tables read by index-only scans alone (the index carries every column the statement uses)
    index_only: tuple[str, ...] = ()


@dataclass(slots=True)
class Context:
    spike: int  # the alert being fanned out now (its rows pending, some of them due)
    update: int  # a HALF_UPDATE of an earlier SPIKE
    owner: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def _update_windows() -> tuple[object, ...]:
    return (recipients.HALF_BEFORE, recipients.FULL_BEFORE)


def _tiers() -> tuple[object, ...]:
    return (
        [str(t) for t in TIERS],
        [TIERS[t].delivery_priority for t in TIERS],
        [TIERS[t].alert_delay for t in TIERS],
        [TIERS[t].updates for t in TIERS],
        [TIERS[t].custom_thresholds for t in TIERS],
    )


DAY = timedelta(days=1)
MAX_AGE = timedelta(minutes=30)
QUIET = [0, 1]


def _bins(source: str) -> str:
    return f"candle_bins:{source}"


HOT: dict[str, Hot] = {
    "claim, two lanes": Hot(
        deliveries.CLAIM_DUE,
        lambda c: (NOW, 16, MAX_AGE, QUIET, 0, 16, c.owner),
        # deliveries_spike_day_idx: the daily cap's count and serialisation (core.daily_cap)
        (r"deliveries_claim_idx", r"deliveries_pkey", r"alerts_pkey", r"deliveries_spike_day_idx"),
        ("db.deliveries.CLAIM_DUE",),
    ),
    "claim, one lane": Hot(
        deliveries.CLAIM_DUE,
        lambda c: (NOW, 64, MAX_AGE, QUIET, 32767, 0, c.owner),
        (r"deliveries_claim_idx", r"deliveries_pkey", r"deliveries_spike_day_idx"),
    ),
    "burst digest: the chat's spikes": Hot(
        digest.BURST_SPIKES,
        lambda c: (ELITE_USER, NOW - timedelta(minutes=7), NOW.replace(minute=0, second=0), 1, NOW),
        (r"deliveries_chat_spikes_idx", r"alerts_pkey|alerts_detected_idx"),
        ("db.digest.BURST_SPIKES",),
    ),
    "burst digest: mark the row in flight": Hot(
        digest.MARK,
        lambda c: (1, NOW),
        (r"deliveries_pkey",),
        ("db.digest.MARK",),
    ),
    "resolve": Hot(
        deliveries.RESOLVE,
        lambda c: (
            [1, 2, 3],
            ["sent"] * 3,
            [NOW] * 3,
            [7, 8, 9],
            [None] * 3,
            [None] * 3,
            [0] * 3,
            [False] * 3,
            [False] * 3,
            [None] * 3,
        ),
        (r"deliveries_pkey",),
        ("db.deliveries.RESOLVE",),
    ),
    "sweep: stale in flight": Hot(
        deliveries.MARK_STALE_UNKNOWN,
        lambda c: (timedelta(minutes=5),),
        (r"deliveries_sending_idx",),
        ("db.deliveries.MARK_STALE_UNKNOWN",),
    ),
    "start: orphans in flight": Hot(
        deliveries.MARK_ORPHANS_UNKNOWN,
        lambda c: (deliveries.SENDER_LOCK_CLASS,),
        (r"deliveries_sending_idx",),
        ("db.deliveries.MARK_ORPHANS_UNKNOWN",),
    ),
    "sweep: expire due": Hot(
        deliveries.EXPIRE_DUE,
        lambda c: (NOW, MAX_AGE),
        (r"deliveries_claim_idx", r"alerts_pkey"),
        ("db.deliveries.EXPIRE_DUE",),
    ),
    "sweep: queue state": Hot(
        deliveries.QUEUE_STATE,
        lambda c: (NOW,),
        (r"deliveries_claim_idx",),
        ("db.deliveries.QUEUE_STATE",),
    ),
    "delivery status counts": Hot(
        deliveries.STATUS_COUNTS,
        lambda c: (NOW - timedelta(hours=1),),
        (r"deliveries_created_idx",),
        ("db.deliveries.STATUS_COUNTS",),
    ),
    "chat migration: retry": Hot(
        deliveries.RETRY_AFTER_MIGRATION,
        lambda c: (1, NOW, "moved"),
        (r"deliveries_pkey",),
        ("db.deliveries.RETRY_AFTER_MIGRATION",),
    ),
    "chat migration: move rows": Hot(
        deliveries.MOVE_CHAT_DELIVERIES,
        lambda c: (ELITE_USER, -100123),
        (r"deliveries_chat_idx",),
        ("db.deliveries.MOVE_CHAT_DELIVERIES",),
    ),
    "chat migration: skip duplicates": Hot(
        deliveries.SKIP_MIGRATED_DUPLICATES,
        lambda c: (ELITE_USER,),
        (r"deliveries_chat_idx",),
        ("db.deliveries.SKIP_MIGRATED_DUPLICATES",),
    ),
    "fan-out insert (recipients), SPIKE": Hot(
        recipients.INSERT_DELIVERIES,
        lambda c: (c.spike, NOW, *_tiers(), 0, FIRST_USER + 1000, True, *_update_windows()),
        (r"alerts_pkey", r"users_pkey"),
        ("bot.delivery.recipients.INSERT_DELIVERIES",),
    ),
    "fan-out insert (recipients), update": Hot(
        recipients.INSERT_DELIVERIES,
        lambda c: (c.update, NOW, *_tiers(), 0, None, True, *_update_windows()),
        (r"alerts_pkey", r"alerts_(public|crossing)_key", r"deliveries_alert_id_chat_id_key"),
    ),
    "fan-out due": Hot(
        alerts.FANOUT_DUE, lambda c: (0, 100), (r"alerts_fanout_due_idx",), ("db.alerts.FANOUT_DUE",)
    ),
    "fan-out done": Hot(
        alerts.MARK_FANNED_OUT, lambda c: (c.spike, NOW), (r"alerts_pkey",), ("db.alerts.MARK_FANNED_OUT",)
    ),
    "fan-out failure": Hot(
        alerts.RECORD_FANOUT_FAILURE,
        lambda c: (c.spike, "boom", 5, NOW),
        (r"alerts_pkey",),
        ("db.alerts.RECORD_FANOUT_FAILURE",),
    ),
    "fan-out expiry": Hot(
        alerts.EXPIRE_FANOUT,
        lambda c: (NOW - MAX_AGE, NOW),
        (r"alerts_fanout_due_idx",),
        ("db.alerts.EXPIRE_FANOUT",),
    ),
    "publish: lock": Hot(
        alerts.LOCK_UNPUBLISHED,
        lambda c: (100,),
        (r"alerts_unpublished_idx",),
        ("db.alerts.LOCK_UNPUBLISHED",),
    ),
    "publish: lock one": Hot(
        alerts.LOCK_UNPUBLISHED_BY_ID,
        lambda c: (c.spike,),
        (r"alerts_(pkey|unpublished_idx)",),
        ("db.alerts.LOCK_UNPUBLISHED_BY_ID",),
    ),
    "publish: mark": Hot(
        alerts.MARK_PUBLISHED,
        lambda c: ([c.spike],),
        (r"alerts_(pkey|unpublished_idx)",),
        ("db.alerts.MARK_PUBLISHED",),
    ),
    "publish: backlog": Hot(
        alerts.COUNT_UNPUBLISHED, lambda c: (), (r"alerts_unpublished_idx",), ("db.alerts.COUNT_UNPUBLISHED",)
    ),
    "publish: dead letter": Hot(
        alerts.DEAD_LETTER, lambda c: (c.spike, "boom"), (r"alerts_pkey",), ("db.alerts.DEAD_LETTER",)
    ),
    "an alert's hour of minutes (chart image)": Hot(
        candles.ALERT_HOUR_MINUTES,
        lambda c: (c.spike,),
        (r"alerts_pkey", r"candles_1m_\d{8}_pkey"),
        ("db.candles.ALERT_HOUR_MINUTES",),
    ),
    "alert by id": Hot(alerts.GET, lambda c: (c.spike,), (r"alerts_pkey",), ("db.alerts.GET",)),
    "alert id": Hot(
        alerts.FIND_ID,
        lambda c: (BTC, NOW.replace(minute=0, second=0), "SPIKE"),
        (r"alerts_public_key",),
        ("db.alerts.FIND_ID",),
    ),
    "latest alerts": Hot(
        alerts.LATEST, lambda c: (20, None), (r"alerts_(public_)?detected_idx",), ("db.alerts.LATEST",)
    ),
    "latest alerts of a symbol": Hot(
        alerts.LATEST_FOR_SYMBOL,
        lambda c: (BTC, 20, None),
        (SYMBOL_INDEX,),
        ("db.alerts.LATEST_FOR_SYMBOL",),
    ),
    "feed": Hot(
        alert_feed.FEED,
        lambda c: (NOW - timedelta(minutes=15), 10, ["SPIKE"], None, None),
        (r"alerts_(spike_|public_)?detected_idx",),
        ("db.alert_feed.FEED",),
    ),
    "feed of a symbol": Hot(
        alert_feed.FEED,
        lambda c: (NOW, 100, ["SPIKE", "HALF_UPDATE", "FULL_UPDATE"], BTC, None),
        (SYMBOL_INDEX,),
    ),
    "feed sparklines (a page of alerts' hours)": Hot(
        alert_feed.HOUR_CLOSES,
        lambda c: (
            [BTC, symbol_name(2), symbol_name(3)],
            [NOW.replace(minute=0, second=0) - timedelta(hours=h) for h in (0, 1, 30)],
        ),
        (r"candles_1m_\d{8}_pkey",),
        ("db.alert_feed.HOUR_CLOSES",),
        index_only=("candles_1m",),
    ),
    "chart markers": Hot(
        alert_feed.MARKERS,
        lambda c: (BTC, NOW - 30 * DAY, NOW, NOW, ["SPIKE"]),
        (SYMBOL_INDEX,),
        ("db.alert_feed.MARKERS",),
    ),
    "alert history (/alerts)": Hot(
        alert_history.RECENT,
        lambda c: (NOW, 100, ["SPIKE", "HALF_UPDATE", "FULL_UPDATE"]),
        (r"alerts_(public_)?detected_idx",),
        ("db.alert_history.RECENT",),
    ),
    "candles 1m": Hot(
        candles.FETCH_1M,
        lambda c: (BTC, NOW - 30 * DAY, NOW, 500),
        (r"candles_1m_\d{8}_pkey",),
        ("db.candles.FETCH_1M",),
    ),
    "usual pace: one hour of the day over 30 days (early warning curves)": Hot(
        volume_curves.MINUTE_SUMS,
        lambda c: ([symbol_name(i) for i in range(1, 41)], NOW.replace(minute=0, second=0) - 29 * DAY, 30),
        (r"candles_1m_\d{8}_pkey",),
        ("db.volume_curves.MINUTE_SUMS",),
    ),
    "candles 1m as columns (UDF history)": Hot(
        candles.COLUMNS_OF[candles.FETCH_1M],
        lambda c: (BTC, NOW - 2 * DAY, NOW, 500),
        (r"candles_1m_\d{8}_pkey",),
        index_only=("candles_1m",),  # 500 minutes lie on 500 heap pages (migration 150)
    ),
    "candles 1h": Hot(
        candles.FETCH_1H,
        lambda c: (BTC, NOW - 30 * DAY, NOW, 500),
        (r"candles_1h_pkey",),
        ("db.candles.FETCH_1H",),
    ),
    "candles 1h as columns (UDF history)": Hot(
        candles.COLUMNS_OF[candles.FETCH_1H], lambda c: (BTC, NOW - 30 * DAY, NOW, 500), (r"candles_1h_pkey",)
    ),
    "candles 5m (from minutes)": Hot(
        _bins("candles_1m"),
        lambda c: (timedelta(minutes=5), [BTC], [NOW - 2 * DAY], [NOW]),
        (r"candles_1m_\d{8}_pkey",),
        ("db.candles.FETCH_FROM_MINUTES",),
    ),
    "candles 1d (from hours)": Hot(
        _bins("candles_1h"),
        lambda c: (DAY, [BTC], [NOW - 500 * DAY], [NOW]),
        (r"candles_1h_pkey",),
        ("db.candles.FETCH_FROM_HOURS",),
    ),
    "UDF: newest stored minute": Hot(
        candle_range.NEWEST_BEFORE,
        lambda c: (BTC, NOW - 3 * DAY),
        (r"candles_1m_\d{8}_pkey",),
        ("db.candle_range.NEWEST_BEFORE",),
    ),
    "latest stored minute": Hot(
        candles.LATEST_OPEN_TIME,
        lambda c: (BTC,),
        (r"candles_1m_\d{8}_pkey",),
        ("db.candles.LATEST_OPEN_TIME",),
    ),
    "missing minutes (backfill)": Hot(
        candles.MISSING_MINUTES,
        lambda c: (BTC, NOW - timedelta(hours=2), NOW),
        (r"candles_1m_\d{8}_pkey",),
        ("db.candles.MISSING_MINUTES",),
    ),
    "candle batch: any stored": Hot(
        candles.ANY_STORED,
        lambda c: ([BTC, symbol_name(2)], NOW - timedelta(minutes=1), NOW),
        (r"candles_1m_\d{8}_pkey",),
        ("db.candles.ANY_STORED",),
    ),
    "retention: deliveries": Hot(
        retention.DELETE_DELIVERIES,
        lambda c: (NOW - 30 * DAY, 5000),
        (r"deliveries_created_idx", r"deliveries_pkey"),
        ("db.retention.DELETE_DELIVERIES",),
    ),
    "retention: mark snapshots": Hot(
        retention.DELETE_MARK_SNAPSHOTS,
        lambda c: (NOW - 25 * DAY, 5000),
        (r"mark_snapshots_ts_idx", r"mark_snapshots_pkey"),
        ("db.retention.DELETE_MARK_SNAPSHOTS",),
    ),
    "stats: alerts today": Hot(
        admin.ALERTS_SINCE,
        lambda c: (NOW - DAY,),
        (r"alerts_(public_)?detected_idx",),
        ("db.admin.ALERTS_SINCE",),
    ),
    # Per-day counters (migration 122), not the rows: a month of counters is a few pages (read
    # whole); with a year of them the day's key is used
    # (`test_stats_reads_the_day_counters_not_the_deliveries`).
    "stats: deliveries today": Hot(admin.DELIVERIES_SINCE, lambda c: ((NOW - DAY).date(),), ()),
    "stats: queue": Hot(
        admin.PENDING_DELIVERIES,
        lambda c: (),
        (r"deliveries_claim_idx", r"deliveries_sending_idx"),
        ("db.admin.PENDING_DELIVERIES",),
    ),
}

# Statements of MODULES on a big table that are not on a hot path, and why.
COLD: dict[str, str] = {
    "db.alerts.INSERT": "one row by its values; the unique key's index is used by the insert itself",
    "db.alerts.FIRED_SINCE": "once at ingest start-up: this hour's alerts, seeding the detector",
    "db.candles.CREATE_STAGING": "DDL of a temporary table",
    "db.candles.UPSERT_FROM_STAGING": "ON CONFLICT on the primary key; rows come from the staging table",
    "db.candles.FETCH_1M_ALL": "once at ingest start-up: every symbol's recent minutes (whole partitions)",
    "db.marks.INSERT": "rows by their values, ON CONFLICT on the primary key",
    "db.marks.HISTORY": "no service reads it (tests only)",
    "db.partitions.LIST": "the catalog, not the table",
}


def _hot_names() -> set[str]:
    return {name for hot in HOT.values() for name in hot.names}


def _big_statements() -> set[str]:
    found = set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if not name.isupper() or not isinstance(value, str):
                continue
            if not re.search(r"\b(SELECT|UPDATE|DELETE|INSERT)\b", value):
                continue
            if any(re.search(rf"\b{table}\b", value) for table in BIG):
                found.add(f"{module_name}.{name}")
    return found


def test_every_statement_on_a_big_table_is_planned_here_or_said_cold() -> None:
    found = _big_statements()
    gaps = found - _hot_names() - set(COLD)
    assert not gaps, (
        f"statements on {', '.join(BIG)} without a plan test here (HOT) or a reason (COLD): {gaps}"
    )
    stale = (_hot_names() | set(COLD)) - found
    assert not stale, f"listed but no longer found: {stale}"


# --- the data set ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def planned() -> AsyncIterator[tuple[asyncpg.Connection, Context]]:
    """A throw-away database with the month's data set, one new alert being fanned out (some of
    its rows due), analyzed."""
    name = f"volspike_plans_{uuid.uuid4().hex[:10]}"
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    admin_conn = await asyncpg.connect(PG_ADMIN_URL)
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    try:
        await migrate(url)
        conn = await asyncpg.connect(url)
        try:
            await build(conn, SCALE, NOW)
            context = await _now_playing(conn)
            await conn.execute("ANALYZE")
            yield conn, context
        finally:
            await conn.close()
    finally:
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.close()


async def _now_playing(conn: asyncpg.Connection) -> Context:
    """A SPIKE detected a minute ago, fanned out by the real statement (elite and pro rows due,
    free ones later), a few rows in flight; and a HALF_UPDATE of an older SPIKE."""
    spike = await conn.fetchval(
        alerts.INSERT,
        BTC,
        "BTC",
        "SPIKE",
        NOW.replace(minute=0, second=0),
        NOW - timedelta(minutes=6),
        9e6,
        1e6,
        9.0,
        100.0,
        None,
        False,
        None,  # context
        None,  # level_multiple: a public alert
        None,  # level_volume
        None,  # projected_volume: not an EARLY
    )
    # SPIKE rows carry their symbol-hour, as every SPIKE row written since migration 040 does
    # (the data set's rows do not): deliveries_one_spike_key is then as big as in production.
    await conn.execute(
        "UPDATE deliveries d SET spike_symbol = a.symbol, spike_hour = a.hour_ts FROM alerts a"
        " WHERE a.id = d.alert_id AND a.alert_type = 'SPIKE' AND d.spike_hour IS NULL"
    )
    # One user in ten has a daily cap (core.daily_cap): the claim counts their day.
    await conn.execute("UPDATE user_settings SET daily_cap = 10 WHERE user_id % 10 = 3")
    await recipients.insert_deliveries(conn, spike, NOW)
    await conn.execute(
        "UPDATE deliveries SET status = 'sending', updated_at = $2 WHERE id IN "
        "(SELECT id FROM deliveries WHERE alert_id = $1 ORDER BY id LIMIT 20)",
        spike,
        NOW,
    )
    earlier = await conn.fetchrow(
        "SELECT symbol, asset, hour_ts FROM alerts WHERE alert_type = 'SPIKE' ORDER BY id DESC LIMIT 1"
    )
    update = await conn.fetchval(
        alerts.INSERT,
        earlier["symbol"],
        earlier["asset"],
        "HALF_UPDATE",
        earlier["hour_ts"],  # the data set has no update of its newest SPIKE yet
        NOW - timedelta(minutes=1),
        9e6,
        1e6,
        9.0,
        100.0,
        None,
        False,
        None,  # context
        None,  # level_multiple: a public alert
        None,  # level_volume
        None,  # projected_volume: not an EARLY
    )
    assert update is not None
    await conn.execute("UPDATE alerts SET fanned_out_at = NULL, published_at = NULL WHERE id = $1", update)
    return Context(spike=spike, update=update)


async def _candle_bins_sql(conn: asyncpg.Connection, source: str) -> str:
    """The query `candle_bins` runs for `source` (its body's format string, as PostgreSQL has it)."""
    body: str = await conn.fetchval("SELECT prosrc FROM pg_proc WHERE proname = 'candle_bins'")
    query = body.split("$sql$")[1].replace("%s", source)
    # Its parameters, typed as the function passes them (EXECUTE ... USING gives them their types).
    for number, kind in ((1, "interval"), (2, "text[]"), (3, "timestamptz[]"), (4, "timestamptz[]")):
        query = re.sub(rf"\${number}\b", f"${number}::{kind}", query)
    return query


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _table(relation: str) -> str:
    return "candles_1m" if re.fullmatch(r"candles_1m_\d{8}", relation) else relation


async def _plan(conn: asyncpg.Connection, sql: str, args: tuple[object, ...]) -> dict[str, Any]:
    if sql.startswith("candle_bins:"):
        sql = await _candle_bins_sql(conn, sql.split(":", 1)[1])
    async with conn.transaction():  # EXPLAIN plans without running; the rollback is belt and braces
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        tree: dict[str, Any] = json.loads(raw)[0]["Plan"]
        raise _Rollback(tree)


class _Rollback(Exception):
    def __init__(self, tree: dict[str, Any]) -> None:
        self.tree = tree


@pytest.mark.timeout(600)  # the data set: seconds to a minute on a loaded 2-core machine
@pytest.mark.parametrize("name", sorted(HOT))
async def test_the_hot_statement_reads_through_its_index(
    planned: tuple[asyncpg.Connection, Context], name: str
) -> None:
    conn, context = planned
    hot = HOT[name]
    try:
        await _plan(conn, hot.sql, hot.args(context))
    except _Rollback as done:
        tree = done.tree
    nodes = list(_nodes(tree))
    sequential = sorted(
        {
            _table(n["Relation Name"])
            for n in nodes
            if n["Node Type"] == "Seq Scan" and _table(n["Relation Name"]) in BIG
        }
    )
    assert not sequential, f"{name}: sequential scan of {sequential}\n{json.dumps(tree, indent=1)}"
    heap = sorted(
        {
            f"{n['Node Type']} of {n['Relation Name']}"
            for n in nodes
            if _table(n.get("Relation Name", "")) in hot.index_only and n["Node Type"] != "Index Only Scan"
        }
    )
    assert not heap, f"{name}: reads the heap of {hot.index_only}: {heap}\n{json.dumps(tree, indent=1)}"
    used = {n["Index Name"] for n in nodes if "Index Name" in n}
    for wanted in hot.indexes:
        assert any(re.fullmatch(wanted, index) for index in used), (
            f"{name}: no index matching {wanted!r} in the plan (indexes used: {sorted(used)})\n"
            f"{json.dumps(tree, indent=1)}"
        )


@pytest.mark.timeout(600)
async def test_stats_reads_the_day_counters_not_the_deliveries(
    planned: tuple[asyncpg.Connection, Context],
) -> None:
    """`/stats`'s delivery figures read the per-day counters: no node of the plan touches
    `deliveries`, the counters are read through their key (the day first) for today only, and
    they hold exactly what counting today's rows gives."""
    conn, _context = planned
    today = NOW.date()
    try:
        await _plan(conn, admin.DELIVERIES_SINCE, (today,))
    except _Rollback as done:
        tree = done.tree
    relations = {n["Relation Name"] for n in _nodes(tree) if "Relation Name" in n}
    assert relations == {"delivery_day_counts"}, json.dumps(tree, indent=1)
    counted = dict(await conn.fetch(admin.DELIVERIES_SINCE, today))
    rows = dict(
        await conn.fetch(
            "SELECT status, count(*) FROM deliveries WHERE created_at >= $1 GROUP BY status",
            datetime(today.year, today.month, today.day, tzinfo=UTC),
        )
    )
    assert counted == rows and sum(rows.values()) > 0
    days = await conn.fetchval("SELECT count(DISTINCT day) FROM delivery_day_counts")
    assert days >= 28  # the month's data set, one set of counters a day
    # A year of counters from 40 backends each: today's are read through the key, day first.
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO delivery_day_counts (day, status, slot, n) "
                "SELECT $1::date - d, s, 1000 + p, 1 FROM generate_series(40, 400) d, "
                "unnest(ARRAY['sent', 'failed', 'blocked', 'unknown', 'expired', 'skipped']) s, "
                "generate_series(1, 40) p",
                today,
            )
            await conn.execute("ANALYZE delivery_day_counts")
            await _plan(conn, admin.DELIVERIES_SINCE, (today,))
    except _Rollback as done:
        tree = done.tree
    used = {n["Index Name"] for n in _nodes(tree) if "Index Name" in n}
    assert used == {"delivery_day_counts_pkey"}, json.dumps(tree, indent=1)


@pytest.mark.timeout(600)
async def test_the_claim_finds_an_updates_spike_by_the_whole_key_chat_first(
    planned: tuple[asyncpg.Connection, Context],
) -> None:
    """The claimed rows' SPIKE of their symbol-hour (for updates) is found by the chat and the
    symbol-hour: joined into the outer query it was planned (on the steady data set) as a scan of
    every SPIKE row of the symbol-hour for each claimed row."""
    conn, context = planned
    # As in the steady data set: only the alert being fanned out has rows carrying their
    # symbol-hour, so the statistics call the key's index nearly empty (the plan that read the
    # symbol-hour's rows for each claimed row was chosen on such statistics).
    for lanes in ((NOW, 16, MAX_AGE, QUIET, 0, 16, context.owner), (NOW, 64, MAX_AGE, QUIET, 32767, 0, None)):
        try:
            await _plan(conn, deliveries.CLAIM_DUE, lanes)
        except _Rollback as done:
            tree = done.tree
        # the SPIKE row (`sd`) is planned apart (under its own Limit, run only for an update),
        # whatever the statistics, and found by an index on the chat and the symbol-hour
        spike = [n for n in _nodes(tree) if n.get("Alias") == "sd"]
        apart = [n for limit in _nodes(tree) if limit["Node Type"] == "Limit" for n in _nodes(limit)]
        assert spike and all(any(n is m for m in apart) for n in spike), json.dumps(tree, indent=1)
        for node in spike:
            condition = node.get("Index Cond", "")
            assert "chat_id = c.chat_id" in condition and "spike_hour = a.hour_ts" in condition, node


@pytest.mark.timeout(600)
async def test_the_claims_burst_digest_part_reads_the_chats_spikes_through_their_index(
    planned: tuple[asyncpg.Connection, Context],
) -> None:
    """The claim's burst columns (core.digest) and the digest's list read a chat's SPIKE rows by
    (chat_id, spike_hour), never the chat's whole history nor the table: planned with every SPIKE
    row of the month's data set carrying its symbol-hour, as fanned-out rows do."""
    conn, context = planned
    chat = await conn.fetchval(
        "SELECT chat_id FROM deliveries WHERE alert_id = $1 AND status = 'pending' ORDER BY id LIMIT 1",
        context.spike,
    )
    trees = []
    for sql, args in (
        (deliveries.CLAIM_DUE, (NOW, 16, MAX_AGE, QUIET, 0, 16, context.owner)),
        (digest.BURST_SPIKES, (chat, NOW - timedelta(minutes=7), NOW.replace(minute=0, second=0), 1, NOW)),
    ):
        try:
            async with conn.transaction():
                await conn.execute(
                    "UPDATE deliveries d SET spike_symbol = a.symbol, spike_hour = a.hour_ts FROM alerts a"
                    " WHERE a.id = d.alert_id AND a.alert_type = 'SPIKE' AND d.spike_hour IS NULL"
                )
                await conn.execute("ANALYZE deliveries")
                raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
                raise _Rollback(json.loads(raw)[0]["Plan"])
        except _Rollback as done:
            trees.append(done.tree)
    await conn.execute("ANALYZE deliveries")
    for tree in trees:
        nodes = list(_nodes(tree))
        sequential = {n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"} & set(BIG)
        assert not sequential, json.dumps(tree, indent=1)
        used = {n["Index Name"] for n in nodes if "Index Name" in n}
        assert "deliveries_chat_spikes_idx" in used, (sorted(used), json.dumps(tree, indent=1))
        # the chat's other indexes would read its whole history (thousands of rows a month)
        assert "deliveries_chat_idx" not in used
