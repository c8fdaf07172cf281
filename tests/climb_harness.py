"""An exchange hour that builds up over many minutes and kline updates, as volume does on the
exchange, with the whole pipeline on it: the simulator, `run_ingest` and `run_bot` (its clock the
simulator's) delivering to the Telegram look-alike. Shared by the end-to-end tests of own
thresholds, the early warning and open interest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.app import run_bot
from core.clock import ms_from_utc, utc_from_ms
from core.settings import Settings
from ingest.service import run_ingest
from simulator import SimConfig, SimServer
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.stopping import stop_within
from tests.test_ingest_service import FAST, settings_for

MIN = 60_000
HOUR = 3_600_000
START = datetime(2026, 3, 2, 10, 59, tzinfo=UTC)  # the symbol is listed before its previous hour
H12 = ms_from_utc(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


class SimTime:
    """The bot's clock: the simulator's, so tier delays and ages are counted in exchange time."""

    def __init__(self, sim: SimServer) -> None:
        self.sim = sim

    def now(self) -> datetime:
        return utc_from_ms(self.sim.now_ms())


@contextlib.asynccontextmanager
async def climbing(
    symbol: str, steps: Sequence[tuple[int, float]], *, symbols: int, speed: float
) -> AsyncIterator[SimServer]:
    """A simulator at 12:00:30 whose `symbol` (~$5M an hour) is lifted at 20 s past each of
    `steps`' minutes of 12:00 to its multiple of the previous hour; `symbols` others trade flat."""
    config = SimConfig(
        symbols=symbols,
        seed=21,
        speed=speed,
        start_time=START,
        update_interval=0.1,
        natural_spike_rate=0.0,
        late_close_probability=0.0,
        special_symbols=False,
    )
    async with SimServer(config) as server:
        server.list_symbol(symbol, hourly_quote=5e6)
        server.advance((H12 + 30_000 - server.now_ms()) / 1000)
        for minute, multiple in steps:
            server.schedule_spike(symbol, multiple, at_ms=H12 + minute * MIN + 20_000)
        yield server


def pipeline_settings(settings: Settings, sim: SimServer, tg: FakeTelegram) -> Settings:
    """`settings` pointed at the simulator and the Telegram look-alike."""
    return settings_for(settings, sim).model_copy(
        update={"telegram_api_url": tg.url, "bot_token": SecretStr(TOKEN)}
    )


@contextlib.asynccontextmanager
async def services(
    cfg: Settings, db: asyncpg.Pool, redis: Redis, sim: SimServer, **ingest_options: Any
) -> AsyncIterator[None]:
    """`run_ingest` (without history) and `run_bot` for the block, each stopped within 10 s."""
    tasks = [
        asyncio.create_task(run_ingest(cfg, db, redis, history=False, **{**FAST, **ingest_options})),
        asyncio.create_task(run_bot(cfg, db, redis, clock=SimTime(sim))),
    ]
    try:
        yield
    finally:
        for task, name in zip(tasks, ("ingest", "bot"), strict=True):
            await stop_within(task, 10, name)
