"""Replay throughput: the real capture, repeated to >= 200k lines, through parse_frame and the
detector (`replay_lines`), against a bare `orjson.loads` loop over the same lines.

    .venv/bin/python bench/replay_throughput.py [--lines 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.rows import Row, Section
from ingest.detector import SpikeDetector
from ingest.parsers import parse_frame
from ingest.replay import replay_lines

CAPTURE = Path(__file__).resolve().parent.parent / "tests" / "data" / "binance-usdm-capture-2021-07-22.jsonl"


def best_rate(lines: list[bytes], run: Callable[[list[bytes]], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run(lines)
        best = min(best, time.perf_counter() - started)
    return len(lines) / best


def bare_loads(lines: list[bytes]) -> None:
    loads = orjson.loads
    for line in lines:
        loads(line)


def parse_only(lines: list[bytes]) -> None:
    for line in lines:
        parse_frame(line)


def full_replay(lines: list[bytes]) -> None:
    replay_lines(lines, SpikeDetector(3.0, 3_000_000))


def measure(line_count: int, rounds: int) -> tuple[int, list[tuple[str, float]]]:
    """The capture repeated to `line_count` lines; (lines, [(path, msg/s)]), the baseline first."""
    base = [line for line in CAPTURE.read_bytes().splitlines() if line.strip()]
    lines = (base * (line_count // len(base) + 1))[: max(line_count, len(base))]
    return len(lines), [
        ("orjson.loads loop (baseline)", best_rate(lines, bare_loads, rounds)),
        ("parse_frame", best_rate(lines, parse_only, rounds)),
        ("replay_lines (parse + detector)", best_rate(lines, full_replay, rounds)),
    ]


def rows(lines: int = 200_000, rounds: int = 3) -> Section:
    """`volspike bench`'s rows: replay throughput, and its ratio to the parse-only loop."""
    count, rates = measure(lines, rounds)
    (_, bare), (_, parse), (_, replay) = rates
    ratio = replay / parse
    return Section(
        [
            Row(
                f"replay throughput ({count:,} lines)",
                replay,
                "msg/s",
                ">= 150,000",
                f"parse-only loop {parse:,.0f} msg/s, bare orjson.loads {bare:,.0f} msg/s",
                replay >= 150_000,
            ),
            Row(
                "replay / parse-only loop",
                ratio,
                "x",
                ">= 0.5",
                f"parse-only {parse:,.0f} msg/s",
                ratio >= 0.5,
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    count, results = measure(args.lines, args.rounds)
    baseline = results[0][1]
    print(f"{count:,} lines of {CAPTURE.name}, best of {args.rounds} rounds")
    print(f"{'path':<34} {'msg/s':>12} {'vs baseline':>12}")
    for name, rate in results:
        print(f"{name:<34} {rate:>12,.0f} {rate / baseline:>11.2f}x")


if __name__ == "__main__":
    main()
