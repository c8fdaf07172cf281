"""`volspike bench`: every bench module in one run, one table, its JSON and a chart.

Each module's `rows(...)` starts what it needs (the simulator, the Telegram look-alike, a
throw-away PostgreSQL database and Redis prefix, the services) and returns its rows; this module
only picks the sizes, runs them one after another, prints the table and writes the files.
Sizes: `quick` (the default, minutes), `full` (the issue's sizes) and `tiny` (the test's).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import platform
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.detection_latency import percentile
from bench.rows import Row, Section

log = logging.getLogger(__name__)

# module -> keyword arguments of its rows(), per size
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "replay_throughput": {"lines": 5_000, "rounds": 1},
        "detection_latency": {"symbols": 20, "spikes": 5, "gap": 0.2},
        "candle_writes": {"count": 5_000},
        "alert_context": {"symbols": 5, "alerts": 50},
        "fanout": {"users": 100, "rate": 1000.0, "alerts": 3, "second_rate": None},
        "api_latency": {"clients": 10, "requests": 100, "seconds": 2.0},
        "elite_latency": {"sizes": (50,), "modes": ("free", "paid")},
        "ws_fanout": {"sockets": 50, "alerts": 1, "client_procs": 1},
        "polling_baseline": {"symbols": 6, "hours": 0.5, "speed": 90.0, "spikes_per_hour": 8},
        "ingest_memory": {"symbols": 20, "seconds": 8.0},
        "soak": {"duration": 30.0, "symbols": 20, "users": 2, "spike_every": 8.0},
    },
    "quick": {
        "replay_throughput": {"lines": 50_000, "rounds": 2},
        "detection_latency": {"symbols": 200, "spikes": 30, "gap": 0.3},
        "candle_writes": {"count": 50_000},
        "alert_context": {"symbols": 50, "alerts": 200},
        "fanout": {"users": 2_000, "rate": 1000.0, "alerts": 10, "second_rate": None},
        "api_latency": {"clients": 100, "requests": 1_000, "seconds": 10.0},
        "elite_latency": {"sizes": (100, 1_000), "modes": ("free", "paid")},
        "ws_fanout": {"sockets": 1_000, "alerts": 3, "client_procs": 1},
        "polling_baseline": {"symbols": 100, "hours": 1.0, "speed": 60.0, "spikes_per_hour": 12},
        "ingest_memory": {"symbols": 600, "seconds": 30.0},
        "miniapp_page": {"runs": 3},
        "soak": {"duration": 90.0, "symbols": 600, "users": 3, "spike_every": 10.0},
    },
    "full": {
        "replay_throughput": {"lines": 200_000, "rounds": 3},
        "detection_latency": {"symbols": 600, "spikes": 100, "gap": 0.3},
        "candle_writes": {"count": 200_000},
        "alert_context": {"symbols": 200, "alerts": 1_000},
        "fanout": {"users": 10_000, "rate": 1000.0, "alerts": 30, "second_rate": 500.0},
        "api_latency": {"clients": 100, "requests": 3_000, "seconds": 20.0},
        "elite_latency": {"sizes": (100, 1_000, 10_000), "modes": ("free", "paid")},
        "ws_fanout": {"sockets": 10_000, "alerts": 5, "client_procs": 4},
        # 120, not 600: one simulator process cannot serve 600 symbols' streams at 24 times real
        # time. Polling's weight is per symbol (36 an hour), so 600 symbols is a multiplication.
        "polling_baseline": {"symbols": 120, "hours": 2.0, "speed": 24.0, "spikes_per_hour": 12},
        "ingest_memory": {"symbols": 600, "seconds": 60.0},
        "miniapp_page": {"runs": 10},
        "soak": {"duration": 600.0, "symbols": 600, "users": 10, "spike_every": 20.0},
    },
}


async def run_module(name: str, kwargs: dict[str, Any]) -> Section:
    """One module's rows; a module that fails gives one row without a figure, saying why."""
    started = time.monotonic()
    try:
        module = importlib.import_module(f"bench.{name}")
        result = module.rows(**kwargs)
        section: Section = await result if inspect.isawaitable(result) else result
    except Exception as exc:
        log.error("bench module %s failed", name, exc_info=True)
        detail = "".join(traceback.format_exception_only(exc)).strip()
        section = Section([Row(f"{name}: failed", None, "", "runs", detail[:200], False)])
    print(f"  {name}: {len(section.rows)} row(s) in {time.monotonic() - started:.0f} s", flush=True)
    return section


async def run_suite(size: str, only: list[str] | None = None) -> tuple[list[Row], dict[str, list[float]]]:
    rows: list[Row] = []
    samples: dict[str, list[float]] = {}
    for name, kwargs in SIZES[size].items():
        if only and name not in only:
            continue
        section = await run_module(name, kwargs)
        rows += section.rows
        samples.update(section.samples)
    return rows, samples


def show(value: float | None) -> str:
    if value is None or value != value:  # None or NaN
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def print_table(rows: list[Row]) -> None:
    width = max((len(r.name) for r in rows), default=10)
    print(
        f"\n{'figure':<{width}}  {'value':>12} {'unit':<8} {'target':<18} {'ok':<4} compared with (same run)"
    )
    print("-" * (width + 70))
    for r in rows:
        ok = {True: "ok", False: "MISS", None: ""}[r.met]
        print(f"{r.name:<{width}}  {show(r.figure):>12} {r.unit:<8} {r.target:<18} {ok:<4} {r.comparison}")


def summary(values: list[float]) -> dict[str, float | int]:
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values, default=float("nan")),
    }


def write_json(
    path: Path, size: str, rows: list[Row], samples: dict[str, list[float]], seconds: float
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "size": size,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
        },
        "rows": [r.as_dict() for r in rows],
        "distributions_ms": {name: summary(values) for name, values in samples.items()},
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))


# `volspike bench --steady`: the steady-state module alone (a 30-day data set; bench/steady_state.py),
# at the scale (`--size tiny`: a few hundred users, the suite's test).
STEADY = {
    "tiny": {"scale": "tiny", "api_seconds": 2.0},
    "quick": {"scale": "full"},
    "full": {"scale": "full"},
}


async def main(
    size: str, json_path: Path, chart_path: Path | None, only: list[str] | None = None, steady: bool = False
) -> int:
    from bench import chart

    if chart_path is not None:
        chart.require()  # before minutes of measuring, not after
    logging.getLogger().setLevel(logging.WARNING)  # the table, not the services' INFO lines
    unknown = sorted(set(only or []) - set(SIZES[size]))
    if unknown:
        print(
            f"unknown bench module(s) for size {size}: {', '.join(unknown)}; known: {', '.join(SIZES[size])}"
        )
        return 2
    started = time.monotonic()
    what = "steady state" if steady else f"size {size}"
    print(f"volspike bench, {what}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if steady:
        section = await run_module("steady_state", STEADY[size])
        rows, samples = section.rows, section.samples
    else:
        rows, samples = await run_suite(size, only)
    print_table(rows)
    write_json(json_path, size, rows, samples, time.monotonic() - started)
    print(f"\ntable as JSON: {json_path}")
    if chart_path is not None:
        chart.write_chart(samples, chart_path)
        print(f"latency distributions: {chart_path}")
    return 0 if all(r.figure is not None for r in rows) else 1
