"""The hour's pace: how much of an hour's volume a symbol has usually done by a given moment, and
what the hour's volume so far projects for its close. Pure; the early warning's one rule.

The usual curve of a symbol for one UTC hour of the day is 60 cumulative shares: `shares[k]` is the
share of the hour's quote volume usually done by the end of minute k (`shares[59]` is 1), pooled
over the complete hours of the last 30 days (db/volume_curves.py computes it from candles_1m once a
day). Within minute k the share done grows linearly from `shares[k-1]` to `shares[k]`.

A projection is made only when it means something: the curve was pooled from at least
`MIN_CURVE_DAYS` hours, and at least `MIN_SHARE` of the hour's usual volume and `MIN_ELAPSED_MS`
of the hour are behind us (the first minutes of an hour project wildly). Otherwise it is unknown
(None), never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MINUTE_MS = 60_000
MINUTES = 60
MIN_CURVE_DAYS = 7  # complete hours of the same hour of the day the curve must be pooled from
MIN_SHARE = 0.10  # of the hour's usual volume done before a projection is made
MIN_ELAPSED_MS = 5 * MINUTE_MS  # of the hour passed before a projection is made


@dataclass(frozen=True, slots=True)
class Curve:
    """The usual cumulative share of an hour's volume done by the end of each minute."""

    shares: tuple[float, ...]  # 60, non-decreasing, the last 1.0
    days: int  # complete hours it was pooled from

    def __post_init__(self) -> None:
        if len(self.shares) != MINUTES:
            raise ValueError("a curve has 60 shares")

    def done_at(self, elapsed_ms: int) -> float:
        """The share of the hour's volume usually done `elapsed_ms` into the hour."""
        if elapsed_ms <= 0:
            return 0.0
        if elapsed_ms >= MINUTES * MINUTE_MS:
            return 1.0
        minute, into = divmod(elapsed_ms, MINUTE_MS)
        before = self.shares[minute - 1] if minute > 0 else 0.0
        return before + (self.shares[minute] - before) * into / MINUTE_MS


def curve_from_sums(minute_sums: Sequence[float], hours: int) -> Curve | None:
    """The curve from the summed quote volume of each minute of the hour over `hours` complete
    hours (None when they sum to nothing)."""
    if len(minute_sums) != MINUTES:
        raise ValueError("60 minute sums")
    total = sum(minute_sums)
    if total <= 0:
        return None
    running = 0.0
    shares = []
    for value in minute_sums:
        running += value
        shares.append(min(running / total, 1.0))
    shares[-1] = 1.0
    return Curve(tuple(shares), hours)


def projected_volume(curve: Curve | None, volume_so_far: float, elapsed_ms: int) -> float | None:
    """The hour's total the volume so far projects at this pace; None when unknown (no curve, too
    few days in it, or too early in the hour)."""
    if curve is None or curve.days < MIN_CURVE_DAYS or elapsed_ms < MIN_ELAPSED_MS:
        return None
    done = curve.done_at(elapsed_ms)
    if done < MIN_SHARE or volume_so_far <= 0:
        return None
    return volume_so_far / done
