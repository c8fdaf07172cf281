"""The PNG of `volspike bench`: one box per latency distribution measured in the run (ms, log
scale). matplotlib is the optional `bench` extra (`pip install 'volspike[bench]'`; in the dev lock)."""

from __future__ import annotations

from pathlib import Path

from core.errors import ConfigError

try:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover - the dev lock has it
    plt = None  # type: ignore[assignment]


def require() -> None:
    if plt is None:
        raise ConfigError("the bench chart needs matplotlib: pip install 'volspike[bench]' (or --chart '')")


def write_chart(samples: dict[str, list[float]], path: Path) -> None:
    require()
    shown = {name: [max(v, 1e-3) for v in values] for name, values in samples.items() if values}
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(10, 1.0 + 0.5 * max(1, len(shown))))
    try:
        if shown:
            axes.boxplot(list(shown.values()), vert=False, whis=(1, 99), showfliers=True)
            axes.set_yticks(range(1, len(shown) + 1), [f"{n} (n={len(v)})" for n, v in shown.items()])
            axes.set_xscale("log")
        else:
            axes.text(0.5, 0.5, "no latency samples in this run", ha="center", va="center")
        axes.set_xlabel("milliseconds (log scale); whiskers p1-p99")
        axes.set_title("VolSpike bench: latency distributions")
        axes.grid(axis="x", which="both", alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
