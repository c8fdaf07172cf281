"""The settings presets: the spike multiples, minimum volumes and quiet hours a user picks from
(the bot's /settings buttons, the Mini App's settings page), and the rule that a value outside
them is refused (by the bot and by PUT /api/settings)."""

from __future__ import annotations

MULTIPLE_PRESETS = (3.0, 4.0, 5.0, 7.0, 10.0)
VOLUME_PRESETS = (3_000_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000)
QUIET_PRESETS = ("22:00-07:00", "23:00-08:00", "00:00-06:00")


def format_multiple(value: float) -> str:
    return f"{value:g}×"


def multiple_presets(default: float) -> list[float]:
    return sorted({default, *(p for p in MULTIPLE_PRESETS if p > default)})


def volume_presets(default: float) -> list[float]:
    return sorted({default, *(float(p) for p in VOLUME_PRESETS if p > default)})
