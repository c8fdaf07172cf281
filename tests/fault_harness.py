"""The fault suite's world: real VolSpike processes against servers the test owns.

One `FaultWorld` per scenario: a fresh database on the suite's own PostgreSQL and a fresh key
prefix on its own Redis (`tests/fault_servers.py`, started once per session and stopped at its
end), the simulator as its own `volspike sim` process, the Telegram look-alike in the test's
event loop on a free port, and the services as `volspike ingest|bot|run` processes
(`tests/fault_processes.py`). The scenario breaks something, then ends with `final_checks`.

Time crosses hours by the simulator's clock: the sim starts in the past (`sim_start_ms`) and
is stepped forward (`SimControl.step_to`). Ingest runs on exchange time (event times and
`serverTime`); the bot's clock is the wall clock, which the sim time never overtakes, so an
elite delivery (no delay) is due as soon as its alert exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from db.migrate import migrate
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fault_checks import delivery_problems, figure_problems, missing_candles
from tests.fault_processes import HOUR_MS, MINUTE_MS, ServiceProcess, SimControl
from tests.fault_servers import OwnPostgres, OwnRedis, free_port

SPIKE_MULTIPLE = 3.0
SPIKE_MIN_QUOTE_VOLUME = 3_000_000.0
ELITE_FIRST_ID = 8_800_001
SIM_SYMBOLS = 3  # tradeable perpetuals; the sim adds a non-ASCII one that ingest follows too

_SERVERS = pytest.StashKey[tuple[OwnPostgres, OwnRedis]]()
_RECOVERIES = pytest.StashKey[list[tuple[str, float]]]()


def sim_start_ms(minute: float, span_minutes: float) -> int:
    """Sim time at `minute` of an hour, far enough in the past that sim time stays behind the
    wall clock while the scenario moves it `span_minutes` forward."""
    now = int(time.time() * 1000)
    latest_hour = (now - int((minute + span_minutes + 1) * MINUTE_MS)) // HOUR_MS * HOUR_MS
    return latest_hour + int(minute * MINUTE_MS)


def _servers(config: pytest.Config) -> tuple[OwnPostgres, OwnRedis]:
    if _SERVERS not in config.stash:
        pg = OwnPostgres()
        config.add_cleanup(pg.destroy)
        pg.start()
        redis = OwnRedis()
        config.add_cleanup(redis.destroy)
        redis.start()
        config.stash[_SERVERS] = (pg, redis)
    return config.stash[_SERVERS]


class _RecoverySummary:
    """Prints every scenario's recovery time at the end of the run (also without `-s`)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        rows = self.config.stash.get(_RECOVERIES, [])
        if rows:
            terminalreporter.section("fault suite: recovery times")
            for label, seconds in rows:
                terminalreporter.write_line(f"{seconds:7.2f} s  {label}")


def _record_recovery(config: pytest.Config, label: str, seconds: float) -> None:
    if _RECOVERIES not in config.stash:
        config.stash[_RECOVERIES] = []
        config.pluginmanager.register(_RecoverySummary(config), "volspike-fault-recoveries")
    config.stash[_RECOVERIES].append((label, seconds))
    print(f"\nrecovery: {label}: {seconds:.2f} s")


async def poll(
    check: Callable[[], Awaitable[bool]],
    timeout: float,
    what: str,
    context: Callable[[], Awaitable[str]] | None = None,
) -> float:
    """Wait until `check()` holds; return the seconds it took. Fails after `timeout`, with
    `context()` (logs, rows) in the message."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        if loop.time() - started > timeout:
            detail = "" if context is None else "\n" + await context()
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")
        await asyncio.sleep(0.1)
    return loop.time() - started


@dataclass
class FaultWorld:
    config: pytest.Config
    pg: OwnPostgres
    redis_server: OwnRedis
    workdir: Path
    telegram: FakeTelegram
    sim: SimControl
    sim_process: ServiceProcess
    db_url: str
    prefix: str
    chats: list[int]
    first_candle_ms: int
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    redis: Redis = field(init=False)

    def __post_init__(self) -> None:
        self.redis = Redis.from_url(self.redis_server.url)

    # -- processes -----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The services' whole environment: every URL on loopback, nothing inherited but PATH
        (and PYTHONPATH, to run the suite against another checkout of the code)."""
        return {
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "DATABASE_URL": self.db_url,
            "REDIS_URL": self.redis_server.url,
            "REDIS_PREFIX": self.prefix,
            "BINANCE_REST_URL": self.sim.rest_url,
            "BINANCE_WS_URL": self.sim.rest_url.replace("http://", "ws://"),
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": self.telegram.url,
            "WEBAPP_HOST": "127.0.0.1",
            "WEBAPP_PORT": str(free_port()),
            "WEBAPP_URL": "https://volspike.test",
            "HISTORY_HOURS": "2",
            "SPIKE_MULTIPLE": str(SPIKE_MULTIPLE),
            "SPIKE_MIN_QUOTE_VOLUME": str(SPIKE_MIN_QUOTE_VOLUME),
            "LOG_LEVEL": "INFO",
            # Sim time runs up to ~100 minutes behind the wall clock the bot measures alert age
            # with (`sim_start_ms`): a wider limit than the 30-minute default keeps those alerts
            # deliverable. ISO 8601, which a timedelta setting reads.
            "ALERT_MAX_AGE": "PT3H",
        }

    async def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> ServiceProcess:
        """Start `volspike <args>` as service `name`; `env` adds to or overrides `env()`."""
        proc = ServiceProcess(name, list(args), {**self.env(), **(env or {})}, self.workdir)
        self.services[name] = proc
        await proc.start()
        return proc

    def logs(self) -> str:
        procs = [self.sim_process, *self.services.values()]
        return "\n".join(p.log_tail() for p in procs)

    async def state(self) -> str:
        """What the scenario looks like right now: alert and delivery rows, Telegram calls, logs."""
        lines: list[str] = []
        try:
            conn = await asyncpg.connect(self.db_url)
            try:
                for r in await conn.fetch(
                    "SELECT id, symbol, alert_type, hour_ts, detected_at, current_volume, previous_volume, "
                    "price, published_at, level_multiple, level_volume FROM alerts ORDER BY id"
                ):
                    lines.append(f"alert {dict(r)}")
                for r in await conn.fetch(
                    "SELECT status, count(*) AS n FROM deliveries GROUP BY status ORDER BY status"
                ):
                    lines.append(f"deliveries {r['status']}: {r['n']}")
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            lines.append(f"PostgreSQL not readable: {exc!r}")
        methods = Counter(c.method for c in self.telegram.calls)
        lines.append(f"telegram calls: {dict(methods)}")
        lines.append(self.logs())
        return "\n".join(lines)

    # -- observation ---------------------------------------------------------------------

    async def ingest_health(self) -> dict[str, Any] | None:
        try:
            raw = await self.redis.get(f"{self.prefix}health:ingest")
        except (OSError, RedisError):
            return None  # the scenario may have Redis down right now
        return None if raw is None else orjson.loads(raw)

    async def wait_ingest_healthy(self, since: float, timeout: float = 60.0) -> float:
        """Wait for a health snapshot written after wall time `since` that says armed, every
        connection open and fresh; return the seconds it took."""

        async def healthy() -> bool:
            snap = await self.ingest_health()
            if snap is None or not snap.get("ok") or not snap.get("armed"):
                return False
            written = snap.get("ts")
            # `ts` has whole seconds: only a later second proves a process started after `since`
            # wrote it (the killed one's last snapshot stays in Redis until its TTL).
            return written is not None and _epoch(written) > since

        return await poll(healthy, timeout, "ingest healthy and armed", self.state)

    async def wait_bot_ready(self, since: float, timeout: float = 60.0) -> float:
        """Wait until a bot started after wall time `since` reads the alert stream: its heartbeat
        is fresh and the delivery consumer group has a consumer that was active since then."""

        async def ready() -> bool:
            try:
                beat = await self.redis.get(f"{self.prefix}health:bot")
                if beat is None or _epoch(orjson.loads(beat)["at"]) < since:
                    return False
                consumers = await self.redis.xinfo_consumers(f"{self.prefix}alerts", "delivery")
            except (OSError, RedisError):
                return False
            idle_ms = time.time() * 1000 - since * 1000
            return any(c["idle"] < idle_ms for c in consumers)

        return await poll(ready, timeout, "the bot reading the alert stream", self.state)

    async def wait_alert(self, symbol: str, alert_type: str, timeout: float = 30.0) -> float:
        """Wait until every elite chat got a `alert_type` message of `symbol`'s asset."""
        asset = symbol.removesuffix("USDT")

        async def arrived() -> bool:
            from tests.fault_checks import alert_messages

            return all(alert_messages(self.telegram, c)[(asset, alert_type)] >= 1 for c in self.chats)

        return await poll(arrived, timeout, f"{alert_type} of {symbol} in every chat", self.state)

    async def deliveries_of(self, symbol: str, alert_type: str) -> dict[int, asyncpg.Record]:
        """Chat -> its delivery row (status, capped, message_id) of `symbol`'s `alert_type` alert."""
        conn = await asyncpg.connect(self.db_url)
        try:
            rows = await conn.fetch(
                "SELECT d.chat_id, d.status, d.capped, d.message_id FROM deliveries d"
                " JOIN alerts a ON a.id = d.alert_id WHERE a.symbol = $1 AND a.alert_type = $2",
                symbol,
                alert_type,
            )
        finally:
            await conn.close()
        return {r["chat_id"]: r for r in rows}

    async def wait_settled(self, symbol: str, alert_type: str, timeout: float) -> dict[int, asyncpg.Record]:
        """Wait until every chat's row of the alert is final (neither pending nor sending); return them."""
        rows: dict[int, asyncpg.Record] = {}

        async def settled() -> bool:
            rows.update(await self.deliveries_of(symbol, alert_type))
            return len(rows) == len(self.chats) and all(
                r["status"] not in ("pending", "sending") for r in rows.values()
            )

        await poll(settled, timeout, f"every {alert_type} row of {symbol} settled", self.state)
        return rows

    async def spike(self, symbol: str, multiple: float = 5.0) -> None:
        await self.sim.spike(symbol, multiple, SPIKE_MIN_QUOTE_VOLUME * 2)

    async def followed(self) -> list[str]:
        conn = await asyncpg.connect(self.db_url)
        try:
            return [r["symbol"] for r in await conn.fetch("SELECT symbol FROM symbols WHERE active")]
        finally:
            await conn.close()

    def recovered(self, label: str, seconds: float) -> None:
        _record_recovery(self.config, label, seconds)

    # -- the end of every scenario -------------------------------------------------------

    async def final_checks(self, *, allow_unknown: bool = False, timeout: float = 40.0) -> None:
        """No alert lost, none twice, no candle missing, figures real, every service still up."""
        for name, proc in self.services.items():
            assert proc.running, f"{name} exited with {proc.returncode}\n{self.logs()}"
        last_closed = (await self.sim.now_ms()) // MINUTE_MS * MINUTE_MS - 2 * MINUTE_MS
        assert last_closed > self.first_candle_ms

        problems: list[str] = []

        async def delivered() -> bool:
            problems[:] = await delivery_problems(
                self.db_url, self.telegram, self.chats, allow_unknown=allow_unknown
            )
            return not problems

        async def candles() -> bool:
            return not await missing_candles(self.db_url, self.first_candle_ms, last_closed)

        try:
            await poll(delivered, timeout, "every alert delivered once")
        except AssertionError:
            raise AssertionError("delivery broken:\n" + "\n".join(problems) + "\n" + self.logs()) from None
        try:
            await poll(candles, timeout, "candles_1m complete")
        except AssertionError:
            gaps = await missing_candles(self.db_url, self.first_candle_ms, last_closed)
            raise AssertionError(f"minutes missing in candles_1m: {gaps}\n{self.logs()}") from None
        figures = await figure_problems(self.db_url, self.sim, SPIKE_MULTIPLE, SPIKE_MIN_QUOTE_VOLUME)
        assert not figures, "alerts with figures that are not real:\n" + "\n".join(figures)
        # Nothing arrives late or twice a moment later.
        await asyncio.sleep(1.0)
        again = await delivery_problems(self.db_url, self.telegram, self.chats, allow_unknown=allow_unknown)
        assert not again, "\n".join(again)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@contextlib.asynccontextmanager
async def open_world(
    request: pytest.FixtureRequest,
    *,
    start_ms: int,
    seed: int = 11,
    elite: int = 3,
    telegram_latency: float = 0.0,
    symbols: int = SIM_SYMBOLS,
) -> AsyncIterator[FaultWorld]:
    """A fresh world for one scenario: database, Redis prefix, sim, Telegram look-alike, elite
    users; `volspike migrate` has run. The scenario starts the services it needs."""
    pg, redis_server = await asyncio.to_thread(_servers, request.config)
    workdir = Path(tempfile.mkdtemp(prefix="volspike-faults-"))
    name = f"faults_{uuid.uuid4().hex[:10]}"
    sim_port = free_port()
    sim_process = ServiceProcess(
        "sim",
        [
            "sim",
            "--port",
            str(sim_port),
            "--symbols",
            str(symbols),
            "--seed",
            str(seed),
            "--start-time",
            str(start_ms),
        ],
        {
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "LOG_LEVEL": "INFO",
        },
        workdir,
    )
    telegram = FakeTelegram(latency=telegram_latency)
    chats = [ELITE_FIRST_ID + i for i in range(elite)]
    async with contextlib.AsyncExitStack() as stack:
        # the failure messages carry the log tails; the directory goes in every case
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        await telegram.start()
        stack.push_async_callback(telegram.stop)
        await sim_process.start()
        stack.push_async_callback(sim_process.stop)
        sim = await stack.enter_async_context(SimControl(f"http://127.0.0.1:{sim_port}"))
        await sim.wait_ready()
        world = FaultWorld(
            config=request.config,
            pg=pg,
            redis_server=redis_server,
            workdir=workdir,
            telegram=telegram,
            sim=sim,
            sim_process=sim_process,
            db_url=pg.url(name),
            prefix=f"faults:{uuid.uuid4().hex[:8]}:",
            chats=chats,
            first_candle_ms=start_ms // HOUR_MS * HOUR_MS - HOUR_MS,
        )

        async def stop_services() -> None:
            await asyncio.gather(*(p.stop() for p in world.services.values()))

        stack.push_async_callback(stop_services)
        stack.push_async_callback(world.redis.aclose)
        await migrate(world.db_url)  # what `volspike migrate` runs, without another process start
        await _add_elite_users(world.db_url, chats)
        yield world


async def _add_elite_users(db_url: str, chats: list[int]) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.executemany(
            "INSERT INTO users (id, first_name, tier) VALUES ($1, $2, 'elite')",
            [(chat, f"Elite {chat}") for chat in chats],
        )
    finally:
        await conn.close()
