"""Fan-out benchmark: one alert to 10,000 elite subscribers through the Telegram look-alike.

    .venv/bin/python -m bench.fanout [--users 10000] [--rate 1000] [--alerts 30]

Runs the real delivery service (`bot.delivery.run_delivery`: stream worker, sender, limiter) with
`TELEGRAM_GLOBAL_RATE` raised to `--rate`, against a throw-away PostgreSQL database and Redis
prefix, and the Telegram look-alike in a child process (so it does not share our event loop).

Phase 1: one alert → `--users` elite users. Achieved send rate (first to last sendMessage) versus
the limit (target ≥ 0.95), lost (users without a message) and duplicated (extra messages), counted
in the look-alike's own call log, plus the database's view of the rows.
Phase 2: `--alerts` alerts one after another to a 100-user audience (the rest paused), each
measured from XADD to its first sendMessage at the look-alike (target p95 < 50 ms).
Environment: VOLSPIKE_BENCH_PG (admin URL, default postgresql://postgres@127.0.0.1:5432/postgres),
VOLSPIKE_BENCH_REDIS (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
from aiogram import Bot
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.app import build_bot
from bot.delivery import DeliveryOptions, run_delivery
from bot.i18n import create_i18n
from core.alerts import Alert, AlertType
from core.clock import SystemClock, hour_floor
from core.redis_names import RedisNames
from core.settings import Settings, load_settings
from db.migrate import migrate
from db.pool import create_pool

# `python bench/fanout.py` as well as `python -m bench.fanout` (the Makefile's way): the look-alike
# lives in tests/fakes, the percentile in bench/.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.detection_latency import percentile  # noqa: E402

PG_ADMIN = os.environ.get("VOLSPIKE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("VOLSPIKE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
LATENCY_AUDIENCE = 100

INSERT_ALERT = """
INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume, previous_volume,
                    volume_ratio, price, funding_rate, published_at)
VALUES ($1, $2, 'SPIKE', $3, $4, 5e9, 1.5e9, 3.33, 97123.4, 0.0001, now())
RETURNING id
"""


# -- the look-alike in a child process -----------------------------------------------------


def _fake_process(conn: Connection, limits: bool = False) -> None:
    asyncio.run(_serve_fake(conn, limits))


async def _serve_fake(conn: Connection, limits: bool = False) -> None:
    from tests.fakes.telegram_api import FakeTelegram

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    async with FakeTelegram() as tg:
        if limits:  # Telegram's broadcast limits, enforced (tests/fakes/telegram_limits.py)
            tg.enforce_limits()

        def on_command() -> None:
            command = conn.recv()
            if command == "calls":
                conn.send([(c.chat_id, c.at, c.text[:40]) for c in tg.calls if c.method == "sendMessage"])
            elif command == "limits":
                found = tg.limits
                conn.send((found.refused, found.billed, found.peak) if found else (0, 0, 0))
            elif command == "stop":
                done.set()

        loop.add_reader(conn.fileno(), on_command)
        conn.send(tg.url)
        await done.wait()
        loop.remove_reader(conn.fileno())


class RemoteFake:
    def __init__(self, *, limits: bool = False) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_fake_process, args=(child, limits), daemon=True)

    def start(self) -> str:
        self._process.start()
        url: str = self._conn.recv()
        return url

    def send_calls(self) -> list[tuple[int, float, str]]:
        self._conn.send("calls")
        calls: list[tuple[int, float, str]] = self._conn.recv()
        return calls

    def limits(self) -> tuple[int, int, int]:
        """The look-alike's 429s answered, paid messages billed, most messages in one second."""
        self._conn.send("limits")
        found: tuple[int, int, int] = self._conn.recv()
        return found

    def stop(self) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)


# -- helpers ----------------------------------------------------------------------------------


async def _create_users(pool: asyncpg.Pool, count: int) -> list[int]:
    ids = list(range(10_000_001, 10_000_001 + count))
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "users", records=[(i, "en", "elite") for i in ids], columns=["id", "language", "tier"]
        )
        await conn.copy_records_to_table("user_settings", records=[(i,) for i in ids], columns=["user_id"])
    return ids


async def _alert(pool: asyncpg.Pool, symbol: str) -> Alert:
    now = datetime.now(UTC)
    alert_id = await pool.fetchval(INSERT_ALERT, symbol, symbol.removesuffix("USDT"), hour_floor(now), now)
    return Alert(
        symbol=symbol,
        asset=symbol.removesuffix("USDT"),
        alert_type=AlertType.SPIKE,
        hour=hour_floor(now),
        detected_at=now,
        current_volume=5e9,
        previous_volume=1.5e9,
        ratio=3.33,
        price=97123.4,
        funding_rate=0.0001,
        id=alert_id,
    )


async def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in time")
        await asyncio.sleep(0.05)


# -- the benchmark ---------------------------------------------------------------------------


@dataclass
class Stack:
    """What a delivery bench runs on: a throw-away database, a Redis prefix, the look-alike
    in its own process and one aiogram bot pointed at it."""

    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    bot: Bot
    fake: RemoteFake


@contextlib.asynccontextmanager
async def delivery_stack(*, limits: bool = False, **overrides: Any) -> AsyncIterator[Stack]:
    """A stack on a freshly migrated database of its own, dropped afterwards."""
    db_name = f"volspike_bench_{uuid.uuid4().hex[:8]}"
    db_url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{db_name}"
    await migrate(db_url)
    try:
        async with stack_on(db_url, limits=limits, **overrides) as stack:
            yield stack
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def stack_on(db_url: str, *, limits: bool = False, **overrides: Any) -> AsyncIterator[Stack]:
    """A stack on the (migrated) database at `db_url`, which it leaves in place; its Redis keys
    go afterwards."""
    fake = RemoteFake(limits=limits)
    tg_url = fake.start()
    settings = load_settings(
        _env_file=None,
        database_url=db_url,
        redis_url=REDIS_URL,
        redis_prefix=f"vsbench:{uuid.uuid4().hex[:8]}:",
        bot_token=SecretStr("7000000001:TEST-token-for-the-local-look-alike"),
        telegram_api_url=tg_url,
        webapp_url="https://volspike.test",
        # the benches time each alert's own message: alerts of several symbols a minute apart at
        # most to the same users would otherwise go out as one burst digest from the fourth on
        **{"digest_min_symbols": 0, **overrides},
    )
    pool = await create_pool(db_url, min_size=2, max_size=8)
    redis = Redis.from_url(REDIS_URL)
    bot = build_bot(settings)
    try:
        yield Stack(settings, pool, redis, bot, fake)
    finally:
        await bot.session.close()
        await redis.delete(*[k async for k in redis.scan_iter(match=f"{settings.redis_prefix}*")] or ["-"])
        await redis.aclose()
        await pool.close()
        fake.stop()


async def bench(
    users: int, rate: float, alerts: int, second_rate: float | None
) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    async with delivery_stack(telegram_global_rate=rate) as stack:
        settings, pool, redis, bot, fake = stack.settings, stack.pool, stack.redis, stack.bot, stack.fake
        ids = await _create_users(pool, users)
        ceiling = await _client_ceiling(bot, 2000)
        rows.append(("client ceiling: bare aiogram sendMessage, no limiter/DB (msg/s)", f"{ceiling:.0f}", ""))
        for index, limit in enumerate([rate] + ([second_rate] if second_rate else [])):
            config = settings.model_copy(update={"telegram_global_rate": limit})
            async with _service(bot, config, pool, redis):
                rows += await _throughput(pool, redis, fake, config, ids, f"F{index}USDT")
                if index == 0:
                    rows += await _latency(pool, redis, fake, config, ids, alerts)
    return rows


async def _client_ceiling(bot: Bot, count: int) -> float:
    """How fast this process can push sendMessage through aiogram at all (also warms it up)."""
    gate = asyncio.Semaphore(100)

    async def one(chat_id: int) -> None:
        async with gate:
            await bot.send_message(chat_id, "ceiling")

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(1, count + 1)))
    return count / (time.monotonic() - started)


@contextlib.asynccontextmanager
async def _service(bot: Bot, settings: Settings, pool: asyncpg.Pool, redis: Redis) -> AsyncIterator[None]:
    task = asyncio.create_task(
        run_delivery(
            bot,
            settings,
            pool,
            redis,
            create_i18n(),
            clock=SystemClock(),
            consumer_name="bench",
            options=DeliveryOptions(block=1.0),
        )
    )
    try:
        await _wait(lambda: _group_ready(redis, RedisNames(settings.redis_prefix)), 10)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _throughput(
    pool: asyncpg.Pool, redis: Redis, fake: RemoteFake, settings: Settings, ids: list[int], symbol: str
) -> list[tuple[str, str, str]]:
    """One alert to every user: achieved rate, lost, duplicated."""
    rate = settings.telegram_global_rate
    alert = await _alert(pool, symbol)
    xadd_at = time.monotonic()
    await redis.xadd(RedisNames(settings.redis_prefix).alerts_stream, {"alert": alert.to_json()})
    await _wait(lambda: _settled(pool, alert.id), timeout=len(ids) / rate * 3 + 30)
    calls = [c for c in fake.send_calls() if c[2].startswith(f"<b>{alert.asset} ")]
    per_chat = Counter(chat for chat, _, _ in calls)
    times = sorted(at for _, at, _ in calls)
    achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    lost = sum(1 for i in ids if per_chat[i] == 0)
    duplicated = sum(n - 1 for n in per_chat.values() if n > 1)
    sent_rows = await pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE alert_id = $1 AND status = 'sent'", alert.id
    )
    return [
        (f"limit {rate:.0f} msg/s, one alert → {len(ids)} elite users", "", ""),
        ("  achieved rate (msg/s)", f"{achieved:.1f}", f">= {0.95 * rate:.0f}"),
        ("  achieved / limit", f"{achieved / rate:.3f}", ">= 0.95"),
        ("  lost (users without the message)", f"{lost}", "0"),
        ("  duplicated (extra messages)", f"{duplicated}", "0"),
        ("  rows 'sent' in PostgreSQL", f"{sent_rows}", f"{len(ids)}"),
        ("  XADD → first message (ms)", f"{(times[0] - xadd_at) * 1000:.1f}", ""),
        ("  XADD → last message (s)", f"{times[-1] - xadd_at:.2f}", ""),
    ]


async def _latency(
    pool: asyncpg.Pool, redis: Redis, fake: RemoteFake, settings: Settings, ids: list[int], alerts: int
) -> list[tuple[str, str, str]]:
    """Alerts one at a time, each to its own block of users (so no per-chat limit applies)."""
    stream = RedisNames(settings.redis_prefix).alerts_stream
    latencies = []
    for index in range(alerts):
        block = ids[(index * LATENCY_AUDIENCE) % len(ids) :][:LATENCY_AUDIENCE]
        # Only the rows that change, so the table does not bloat over the run.
        await pool.execute(
            "UPDATE user_settings SET paused = NOT paused WHERE paused = (user_id = ANY($1::bigint[]))", block
        )
        alert = await _alert(pool, f"L{index}USDT")
        before = len(fake.send_calls())
        xadd_at = time.monotonic()
        await redis.xadd(stream, {"alert": alert.to_json()})
        await _wait(lambda a=alert: _settled(pool, a.id), timeout=30)
        firsts = [at for _, at, text in fake.send_calls()[before:] if text.startswith(f"<b>L{index} ")]
        latencies.append((min(firsts) - xadd_at) * 1000)
    await pool.execute("UPDATE user_settings SET paused = false WHERE paused")
    return [
        (f"XADD → first sendMessage, {alerts} alerts × {LATENCY_AUDIENCE} users (of {len(ids)})", "", ""),
        ("  p50 (ms)", f"{statistics.median(latencies):.1f}", ""),
        ("  p95 (ms)", f"{percentile(latencies, 0.95):.1f}", "< 50"),
        ("  max (ms)", f"{max(latencies):.1f}", ""),
    ]


async def _group_ready(redis: Redis, names: RedisNames) -> bool:
    if not await redis.exists(names.alerts_stream):
        return False
    groups = await redis.xinfo_groups(names.alerts_stream)
    return any(g["name"] == names.delivery_group.encode() for g in groups)


async def _settled(pool: asyncpg.Pool, alert_id: int | None) -> bool:
    """The alert's rows exist and none is pending or in flight."""
    row = await pool.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE status IN ('pending', 'sending')) AS open "
        "FROM deliveries WHERE alert_id = $1",
        alert_id,
    )
    return row is not None and row["n"] > 0 and row["open"] == 0


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(name) for name, _, _ in rows)
    print(f"{'metric':<{width}}  {'value':>10}  target")
    print("-" * (width + 22))
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>10}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--alerts", type=int, default=30)
    parser.add_argument(
        "--second-rate", type=float, default=500.0, help="repeat the fan-out at this limit too (0: skip)"
    )
    args = parser.parse_args()
    print_table(asyncio.run(bench(args.users, args.rate, args.alerts, args.second_rate or None)))


async def rows(
    users: int = 10_000, rate: float = 1000.0, alerts: int = 30, second_rate: float | None = 500.0
) -> Any:
    """`volspike bench`'s rows (a bench.rows.Section): this module's table, each figure parsed."""
    from bench.rows import Row, Section

    out, group = [], ""
    for name, value, target in await bench(users, rate, alerts, second_rate):
        if not value:
            group = name
            continue
        figure = float(value.replace(",", ""))
        met = None
        if target.startswith((">=", "<", "0")) or target.isdigit():
            op, _, bound = target.partition(" ")
            limit = float((bound or op).replace(",", ""))
            met = figure >= limit if op == ">=" else figure < limit if op == "<" else figure == limit
        label, unit = name.strip(), ""
        if label.endswith(")") and " " not in label[label.rfind("(") :]:  # "... (ms)": the unit
            label, _, unit = label[:-1].rpartition(" (")
        label = f"fan-out, {group}: {label}" if name.startswith("  ") else label
        out.append(Row(label, figure, unit, target or "report only", f"limit {rate:.0f} msg/s", met))
    return Section(out)


if __name__ == "__main__":
    main()
