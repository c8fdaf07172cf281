"""The settings presets: the spike multiples, minimum volumes and quiet hours a user picks from
(the bot's /settings buttons, the Mini App's settings page), and the rule that a value outside
them is refused (by the bot and by PUT /api/settings).

Own thresholds. A pro or elite user's SPIKE for a symbol-hour fires when the hour first stands at
or above both their multiple M and their minimum volume V. Ingest does not know its users, so it
records the hour's climb instead (`Grades`): once the service's own rule fired (the public
SPIKE), each kline update that lifts the hour to a higher preset multiple or a higher preset
volume records a *crossing* with the figures of that moment, graded with the highest preset
multiple and volume the hour then stands at. Both figures only grow within an hour (the
denominator is fixed), so the first moment an hour stands at or above (M, V) is the moment its
later threshold was passed: one of the recorded rows. A user's SPIKE is the earliest row of the
symbol-hour (the public SPIKE included) whose ratio and volume are at or above theirs. At most
`len(multiples) + len(volumes) - 2` crossings per symbol-hour, however many users.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

MULTIPLE_PRESETS = (3.0, 4.0, 5.0, 7.0, 10.0)
VOLUME_PRESETS = (3_000_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000)
QUIET_PRESETS = ("22:00-07:00", "23:00-08:00", "00:00-06:00")


def format_multiple(value: float) -> str:
    return f"{value:g}×"


def multiple_presets(default: float) -> list[float]:
    return sorted({default, *(p for p in MULTIPLE_PRESETS if p > default)})


def volume_presets(default: float) -> list[float]:
    return sorted({default, *(float(p) for p in VOLUME_PRESETS if p > default)})


@dataclass(frozen=True, slots=True)
class Grades:
    """The preset grid of one service (its defaults first): what an hour's climb is graded on."""

    multiples: tuple[float, ...]
    volumes: tuple[float, ...]

    @classmethod
    def for_defaults(cls, multiple: float, min_volume: float) -> Grades:
        return cls(tuple(multiple_presets(multiple)), tuple(volume_presets(min_volume)))

    @classmethod
    def none(cls, multiple: float, min_volume: float) -> Grades:
        """Only the service's rule: no crossing is ever recorded (`volspike replay` by default)."""
        return cls((multiple,), (min_volume,))

    def grade(self, ratio: float, volume: float) -> tuple[int, int]:
        """Indexes of the highest preset multiple and volume at or below the figures (-1: below
        the defaults)."""
        return bisect_right(self.multiples, ratio) - 1, bisect_right(self.volumes, volume) - 1
