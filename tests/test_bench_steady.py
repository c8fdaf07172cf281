"""`volspike bench --steady`: the steady-state rows, each with its target and the first day's
figure from the same run, on the tiny data set (built with generate_series, kept, reused, dropped
on request)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import orjson
import pytest

from bench.steady_state import PREFIX, SCALES
from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parent.parent
TINY = PREFIX + SCALES["tiny"].fingerprint()


def _run(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def _exists(name: str) -> bool:
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        return bool(
            await admin.fetchval("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name)
        )
    finally:
        await admin.close()


@pytest.mark.timeout(1500)  # a data set, the pipeline twice, the API twice: minutes on a loaded machine
async def test_bench_steady_prints_every_row_with_its_target_and_the_first_days_figure(
    tmp_path: Path,
) -> None:
    results, chart = tmp_path / "steady.json", tmp_path / "steady.png"
    command = ["-m", "volspike.cli", "bench", "--steady", "--size", "tiny", "--json", str(results)]
    done = _run(*command, "--chart", str(chart))
    document = orjson.loads(results.read_bytes())
    rows = {row["name"]: row for row in document["rows"]}
    assert not [name for name in rows if name.endswith(": failed")], done.stdout[-4000:] + done.stderr[-4000:]
    not_measured = {name for name, row in rows.items() if row["figure"] is None}
    assert not not_measured, not_measured
    assert done.returncode == 0  # every row has its figure
    for expected in (
        "steady data set: build time",
        "steady: sender claim p50",
        "steady: sender claim p99",
        "steady: sender resolve p50",
        "steady: sender resolve p99",
        "steady: paid, two lanes, alert → last of",
        "steady: paid, one lane, alert → last of",
        "steady: free limit, alert → last of",
        "steady: paid, backlog, two lanes, alert → last of",
        "steady: paid, two lanes, alert → first elite message",
        "steady: /api/candles 1m x500 p99",
        "steady: /api/candles 1d x500 p99",
        "steady: /udf/history 1m x500 p99",
        "steady: /api/alerts of a symbol p99",
        "steady: /api/markets (elite: the live table of every symbol) p99",
        "steady: autovacuum, max dead-tuple share over a simulated week (7 days",
        "steady: bot /alerts",
        "steady: bot /stats",
        "steady: retention job, a day of expired rows",
        "steady: longest sender claim during retention",
    ):
        found = [row for name, row in rows.items() if name.startswith(expected)]
        assert found, (expected, list(rows))
        assert all(row["target"] for row in found)
        if expected.startswith("steady: ") and "build time" not in expected:
            assert all("empty database" in row["comparison"] for row in found), found
    retention = next(row for name, row in rows.items() if name.startswith("steady: retention job"))
    assert "(0 deliveries)" not in retention["name"]  # the expired day was there to delete
    claim = next(row for name, row in rows.items() if name.startswith("steady: sender claim p50"))
    assert "without the counter triggers" in claim["comparison"]
    week = next(row for name, row in rows.items() if name.startswith("steady: autovacuum"))
    assert 0 < week["figure"] < 100, week  # the week's updates and deletes left dead tuples
    if "emulated autovacuum" in week["name"]:  # this server runs without autovacuum
        assert "'deliveries'" in week["comparison"], week  # the emulation vacuumed it
    # the week put back what it changed: no alert, delivery row or partition after the anchor's day
    conn = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + TINY)
    try:
        anchor = await conn.fetchval("SELECT anchor FROM bench_dataset")
        assert not await conn.fetchval(
            "SELECT count(*) FROM alerts WHERE detected_at > $1::timestamptz + interval '1 day'", anchor
        )
        assert not await conn.fetchval(
            "SELECT count(*) FROM candles_1h WHERE open_time > $1::timestamptz + interval '1 day'", anchor
        )
        counted = await conn.fetchval("SELECT sum(n) FROM delivery_day_counts")
        assert counted == await conn.fetchval("SELECT count(*) FROM deliveries")  # the counters stayed true
    finally:
        await conn.close()
    assert await _exists(TINY)  # kept for the next run
    again = _run("-m", "bench.steady_state", "--scale", "tiny", "--build-only", timeout=300)
    assert "reused" in again.stdout, again.stdout + again.stderr
    dropped = _run("-m", "bench.steady_state", "--scale", "tiny", "--drop", timeout=300)
    assert TINY in dropped.stdout and not await _exists(TINY)
