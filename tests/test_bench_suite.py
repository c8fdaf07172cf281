"""`volspike bench`: every bench module in one run, one table with a figure and a target per row,
the table as JSON and a PNG of the latency distributions; and a clear refusal outside a checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(1500)  # every module, tiny, one after another: minutes on a loaded 2-core machine
def test_bench_tiny_writes_every_row_with_a_figure_and_a_target_and_a_png(tmp_path: Path) -> None:
    results, chart = tmp_path / "results.json", tmp_path / "latencies.png"
    command = ["bench", "--quick", "--size", "tiny", "--json", str(results), "--chart", str(chart)]
    done = subprocess.run(
        [sys.executable, "-m", "volspike.cli", *command],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    document = orjson.loads(results.read_bytes())
    assert document["size"] == "tiny"
    rows = document["rows"]
    for row in rows:
        assert row["figure"] is not None, row
        assert row["target"], row
    names = [row["name"] for row in rows]
    assert not [name for name in names if name.endswith(": failed")]
    # one row per figure the issue names, each beside its comparison from the same run
    for expected in (
        "replay / parse-only loop",
        "detection latency p99",
        "candle write rate",
        "achieved / limit",
        "/api/candles 1h x500 uncached, 10 clients x 1 req/s (open loop) p99",
        "/udf/history 60 x500 uncached, 10 clients x 1 req/s (open loop) p99",
        "saturation: /api/candles 1h x500 uncached",
        "paid broadcasts, 50 elite: alert → last sendMessage",
        "free limit (25 msg/s), 50 elite: alert → last sendMessage",
        "/ws connections held",
        "/ws PUBLISH → last",
        "spike detection delay p95, VolSpike streaming",
        "REST weight per exchange hour",
        "ingest peak RSS",
        "ingest resident memory",
        "bot resident memory",
        "webapp resident memory",
        "soak: alerts delivered",
        "spike → last user's sendMessage p95",
    ):
        assert any(expected in name for name in names), (expected, names)
    by_name = {row["name"]: row for row in rows}
    for name, compared_with in (
        ("replay / parse-only loop", "parse-only"),
        ("fan-out, limit 1000 msg/s, one alert → 100 elite users: achieved / limit", "limit 1000"),
        ("spike detection delay p95, VolSpike streaming", "polling every 5 min"),
    ):
        assert compared_with in by_name[name]["comparison"], by_name[name]
    assert document["distributions_ms"]["detection: frame → alert committed"]["n"] > 0
    png = chart.read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    assert "figure" in done.stdout and "target" in done.stdout  # the one table, printed


def test_bench_outside_a_checkout_says_it_needs_the_repository(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "volspike", tmp_path / "volspike")  # an installation without bench/ and tests/
    done = subprocess.run(
        [sys.executable, "-m", "volspike.cli", "bench"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "run from a checkout of the repository" in done.stderr and "Traceback" not in done.stderr
