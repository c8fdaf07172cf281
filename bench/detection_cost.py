"""Detection cost per kline update: `SpikeDetector.on_kline` alone (no parsing, no I/O), with and
without the own-threshold grades, on the worst case for them: every symbol's hour spikes early and
keeps climbing (each update checks for a higher grade), plus a quiet market (no spike at all).

    .venv/bin/python -m bench.detection_cost [--symbols 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.rows import Row, Section
from core.presets import Grades
from ingest.detector import SpikeDetector
from ingest.parsers import Kline

MIN = 60_000
HOUR = 3_600_000
H0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
DEFAULTS = (3.0, 3_000_000.0)


def _kline(symbol: str, open_ms: int, q: float, closed: bool, event_ms: int) -> Kline:
    return Kline(
        symbol, "1m", open_ms, open_ms + MIN - 1, 1.0, 1.0, 1.0, 1.0, q, q, 10, 0.0, 0.0, closed, event_ms
    )


def frames(symbols: int, climbing: bool) -> tuple[list[Kline], list[Kline]]:
    """(the previous hour, seeded; the current hour: five partial updates and a close a minute)."""
    names = [f"S{i:04d}USDT" for i in range(symbols)]
    seed = [_kline(s, H0 + m * MIN, 100_000, True, H0 + (m + 1) * MIN) for s in names for m in range(60)]
    hour = H0 + HOUR
    live = []
    for m in range(60):
        q = 2_000_000.0 if climbing else 90_000.0  # climbing: 3x by minute 9, 20x by the close
        for k in range(1, 7):
            event = hour + m * MIN + k * 10_000
            live.extend(_kline(s, hour + m * MIN, q * k / 6, k == 6, event) for s in names)
    return seed, live


def cost(seed: list[Kline], live: list[Kline], grades: Grades | None, rounds: int) -> float:
    """Best ns per `on_kline` over `rounds` fresh detectors."""
    best = float("inf")
    for _ in range(rounds):
        detector = SpikeDetector(*DEFAULTS, grades=grades)
        for k in seed:
            detector.on_kline(k)
        on_kline: Callable[[Kline], object] = detector.on_kline
        started = time.perf_counter()
        for k in live:
            on_kline(k)
        best = min(best, time.perf_counter() - started)
    return best / len(live) * 1e9


def measure(symbols: int, rounds: int) -> list[tuple[str, float, float]]:
    """[(market, ns/update without grades, ns/update with grades)]."""
    out = []
    for name, climbing in (("every hour climbing to 20x", True), ("quiet market", False)):
        seed, live = frames(symbols, climbing)
        grades = Grades.for_defaults(*DEFAULTS)
        out.append((name, cost(seed, live, None, rounds), cost(seed, live, grades, rounds)))
    return out


def rows(symbols: int = 300, rounds: int = 3) -> Section:
    (_, plain, graded), (_, quiet_plain, quiet_graded) = measure(symbols, rounds)
    return Section(
        [
            Row(
                "detection cost per kline update, every hour climbing",
                graded,
                "ns",
                "<= 2x without grades",
                f"{plain:,.0f} ns without grades; quiet market {quiet_graded:,.0f} vs {quiet_plain:,.0f} ns",
                graded <= 2 * plain,
            )
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"SpikeDetector.on_kline, {args.symbols} symbols x 360 updates, best of {args.rounds}")
    print(f"{'market':<28} {'no grades ns':>13} {'grades ns':>10} {'ratio':>6}")
    for name, plain, graded in measure(args.symbols, args.rounds):
        print(f"{name:<28} {plain:>13,.0f} {graded:>10,.0f} {graded / plain:>6.2f}")


if __name__ == "__main__":
    main()
