"""Replay throughput: recordings through the replay's parse and the detector (`replay_lines`),
side by side with the parse-only loops over the same lines (a bare `orjson.loads` loop, and
`parse_frame` as a live connection parses). Two recordings, each repeated to `--lines`: the real
capture (mostly streams the rule ignores: depth, bookTicker, aggTrade) and its kline frames alone
(a recording of what ingest subscribes to: the worst case for the parser). Target: the replay at
least 0.4 times the bare loop on each (issue #18).

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


def bare_loads(lines: list[bytes]) -> None:
    loads = orjson.loads
    for line in lines:
        loads(line)


def parse_only(lines: list[bytes]) -> None:
    for line in lines:
        parse_frame(line)


def full_replay(lines: list[bytes]) -> None:
    replay_lines(lines, SpikeDetector(3.0, 3_000_000))


RECORDINGS: dict[str, Callable[[bytes], bool]] = {
    "real capture": lambda line: True,
    "klines only": lambda line: b"@kline_" in line,
}


def measure(
    line_count: int, rounds: int, recording: str = "real capture"
) -> tuple[int, list[tuple[str, float]]]:
    """The recording repeated to `line_count` lines; (lines, [(path, msg/s)]), the baseline first.
    The three loops alternate round by round, so a load change on the machine hits them alike."""
    keep = RECORDINGS[recording]
    base = [line for line in CAPTURE.read_bytes().splitlines() if line.strip() and keep(line)]
    lines = (base * (line_count // len(base) + 1))[: max(line_count, len(base))]
    loops = (
        ("orjson.loads loop (baseline)", bare_loads),
        ("parse_frame (as live)", parse_only),
        ("replay_lines (parse + detector)", full_replay),
    )
    best = dict.fromkeys((name for name, _ in loops), float("inf"))
    for _ in range(rounds):
        for name, run in loops:
            started = time.perf_counter()
            run(lines)
            best[name] = min(best[name], time.perf_counter() - started)
    return len(lines), [(name, len(lines) / seconds) for name, seconds in best.items()]


def rows(lines: int = 200_000, rounds: int = 3) -> Section:
    """`volspike bench`'s rows: replay throughput, and its ratio to the bare parse loop, for
    each recording."""
    out = []
    for recording in RECORDINGS:
        count, rates = measure(lines, rounds, recording)
        (_, bare), (_, parse), (_, replay) = rates
        ratio = replay / bare
        which = "" if recording == "real capture" else f", {recording}"
        out += [
            Row(
                f"replay throughput ({count:,} lines{which})",
                replay,
                "msg/s",
                ">= 150,000",
                f"bare orjson.loads {bare:,.0f} msg/s, parse_frame as live {parse:,.0f} msg/s",
                replay >= 150_000,
            ),
            Row(
                f"replay / parse-only loop{which}",
                ratio,
                "x",
                ">= 0.4",
                f"parse-only loop (orjson.loads) {bare:,.0f} msg/s; parse_frame as live {parse / bare:.2f}x",
                ratio >= 0.4,
            ),
        ]
    return Section(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for recording in RECORDINGS:
        count, results = measure(args.lines, args.rounds, recording)
        baseline = results[0][1]
        print(f"{recording}: {count:,} lines of {CAPTURE.name}, best of {args.rounds} rounds")
        print(f"{'path':<34} {'msg/s':>12} {'vs baseline':>12}")
        for name, rate in results:
            print(f"{name:<34} {rate:>12,.0f} {rate / baseline:>11.2f}x")


if __name__ == "__main__":
    main()
