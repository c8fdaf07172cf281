"""One row of `volspike bench`'s table: a figure, its target and what it is compared with in the
same run. Each bench module's `rows(...)` returns its rows and the latency samples for the chart."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    figure: float | None  # None: not measured in this run (the note says why)
    unit: str
    target: str  # what the figure should be, as text: "< 1 s", ">= 0.95"
    comparison: str = ""  # the figure it is compared with, measured in the same run
    met: bool | None = None  # None: a figure reported beside another, without a target of its own

    def as_dict(self) -> dict[str, object]:
        figure = None if self.figure is None or math.isnan(self.figure) else self.figure
        return {
            "name": self.name,
            "figure": figure,
            "unit": self.unit,
            "target": self.target,
            "comparison": self.comparison,
            "met": self.met,
        }


@dataclass(slots=True)
class Section:
    """What one bench module measured: its rows, and named latency samples (ms) for the chart."""

    rows: list[Row] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict)
