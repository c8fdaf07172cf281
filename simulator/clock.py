"""The simulator's clock: real time, scaled and shifted."""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Sim time = start + real elapsed x speed + manual offset (all in milliseconds)."""

    def __init__(
        self,
        start_ms: int | None = None,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._monotonic = monotonic
        self._start_ms = int(time.time() * 1000) if start_ms is None else int(start_ms)
        self._t0 = monotonic()
        self._speed = speed
        self._offset_ms = 0.0

    @property
    def start_ms(self) -> int:
        return self._start_ms

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        elapsed = self._monotonic() - self._t0
        return self._start_ms + int(elapsed * 1000.0 * self._speed + self._offset_ms)

    def advance(self, seconds: float) -> int:
        """Jump forward; returns the new sim time."""
        if seconds < 0:
            raise ValueError("the sim clock only moves forward")
        self._offset_ms += seconds * 1000.0
        return self.now_ms()

    def real_seconds_until(self, sim_ms: int) -> float:
        """Real seconds until the clock shows ``sim_ms`` (0 if already past)."""
        return max(0.0, (sim_ms - self.now_ms()) / 1000.0 / self._speed)
