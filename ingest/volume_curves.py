"""The usual-pace job: keeps each symbol's intraday volume curves (`core.pace`, `volume_curves`)
fresh and hands them to the detector, so the early warning never reads candles per frame.

Each run recomputes the hours of the day whose curves are older than a day (the first run: all
24), each from the same UTC hour of the last 30 days in `candles_1m`, stores them and loads the
shard's curves into the detector. It keeps no state of its own: a restart loads what is stored
and recomputes only what is stale; a second runner computes the same rows. Runs hourly on every
ingest shard for the shard's own symbols, and once right at start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.clock import Clock, SystemClock
from core.pace import Curve, curve_from_sums
from core.tasks import raise_if_cancelling
from db import volume_curves as db_curves
from ingest.detector import SpikeDetector
from ingest.jobs import schedule_job

log = logging.getLogger(__name__)

JOB_ID = "volume-curves"
DAYS = 30
MAX_AGE = timedelta(days=1)


def last_complete_hour(now: datetime, hour_of_day: int) -> datetime:
    """The start of the latest hour `hour_of_day`:00 UTC that has ended by `now`."""
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0, hour=hour_of_day)
    while start + timedelta(hours=1) > now:
        start -= timedelta(days=1)
    return start


class VolumeCurvesJob:
    def __init__(
        self,
        pool: asyncpg.Pool,
        detector: SpikeDetector,
        symbols: Callable[[], list[str]],
        *,
        clock: Clock | None = None,
        days: int = DAYS,
    ) -> None:
        self._pool = pool
        self._detector = detector
        self._symbols = symbols
        self._clock = clock or SystemClock()
        self._days = days
        self.runs = 0

    async def load(self) -> int:
        """Give the detector every stored curve of the shard's symbols; how many."""
        rows = await db_curves.load(self._pool, self._symbols())
        for symbol, hour_of_day, curve in rows:
            self._detector.set_curve(symbol, hour_of_day, curve)
        return len(rows)

    async def run_once(self) -> int:
        """Recompute the stale hours of the day, then load; how many curves were computed."""
        symbols = sorted(self._symbols())
        if not symbols:
            return 0
        now = self._clock.now().astimezone(UTC)
        computed = 0
        for hour_of_day in await db_curves.stale_hours(self._pool, symbols, now, MAX_AGE):
            raise_if_cancelling()
            first = last_complete_hour(now, hour_of_day) - timedelta(days=self._days - 1)
            sums = await db_curves.minute_sums(self._pool, symbols, first, self._days)
            curves: dict[str, Curve] = {}
            for symbol, (minute_sums, hours) in sums.items():
                curve = curve_from_sums(minute_sums, hours)
                if curve is not None:
                    curves[symbol] = curve
            await db_curves.store(self._pool, hour_of_day, curves, now)
            computed += len(curves)
        await self.load()
        self.runs += 1
        if computed:
            log.info("volume curves computed", extra={"curves": computed})
        return computed

    def schedule(self, scheduler: AsyncIOScheduler, *, interval: timedelta = timedelta(hours=1)) -> None:
        schedule_job(scheduler, JOB_ID, self.run_once, what="volume curves", interval=interval)
