"""Helpers for the delivery tests: users, alerts, the stream, and a running delivery service
(worker + sender + broadcast runner) against the Telegram look-alike, real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time

import asyncpg
from aiogram import Bot
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.app import build_bot
from bot.delivery import DeliveryOptions, run_delivery
from bot.i18n import create_i18n
from core.alerts import Alert, AlertType
from core.clock import ManualClock, hour_floor
from core.redis_names import RedisNames
from core.settings import Settings
from tests.bot_harness import compile_catalogs
from tests.fakes.telegram_api import TOKEN, FakeTelegram

FAST = DeliveryOptions(
    poll_interval=0.05,
    claim_idle=0.05,
    claim_interval=0.1,
    block=0.1,
    broadcast_poll=0.05,
    progress_every=0.2,
    sweep_interval=0.2,
    consumer_idle=600.0,
    retry_first=0.05,
    restart_first=0.05,
)


async def add_user(
    pool: asyncpg.Pool,
    user_id: int,
    *,
    tier: str = "elite",
    language: str = "en",
    expires: datetime | None = None,
    banned: bool = False,
    blocked: bool = False,
    spike_multiple: float | None = None,
    min_quote_volume: float | None = None,
    alert_types: list[str] | None = None,
    watchlist_only: bool = False,
    quiet: tuple[time, time] | None = None,
    timezone: str = "UTC",
    paused: bool = False,
    watch: tuple[str, ...] = (),
) -> None:
    await pool.execute(
        "INSERT INTO users (id, first_name, language, tier, tier_expires_at, banned, blocked) "
        "VALUES ($1, 'Trader', $2, $3, $4, $5, $6)",
        user_id,
        language,
        tier,
        expires,
        banned,
        blocked,
    )
    await pool.execute(
        "INSERT INTO user_settings (user_id, spike_multiple, min_quote_volume, alert_types, watchlist_only, "
        "quiet_start, quiet_end, timezone, paused) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        user_id,
        spike_multiple,
        min_quote_volume,
        alert_types or ["SPIKE", "HALF_UPDATE", "FULL_UPDATE"],
        watchlist_only,
        quiet[0] if quiet else None,
        quiet[1] if quiet else None,
        timezone,
        paused,
    )
    for symbol in watch:
        await pool.execute("INSERT INTO watchlists (user_id, symbol) VALUES ($1, $2)", user_id, symbol)


async def add_alert(
    pool: asyncpg.Pool,
    detected_at: datetime,
    *,
    symbol: str = "BTCUSDT",
    asset: str = "BTC",
    alert_type: AlertType = AlertType.SPIKE,
    current: float = 5e9,
    previous: float = 1.5e9,
    ratio: float = 3.33,
    price: float = 97123.4,
    funding: float | None = 0.0001,
) -> Alert:
    alert = Alert(
        symbol=symbol,
        asset=asset,
        alert_type=alert_type,
        hour=hour_floor(detected_at),
        detected_at=detected_at,
        current_volume=current,
        previous_volume=previous,
        ratio=ratio,
        price=price,
        funding_rate=funding,
    )
    alert_id = await pool.fetchval(
        "INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume, "
        "previous_volume, volume_ratio, price, funding_rate, published_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now()) RETURNING id",
        alert.symbol,
        alert.asset,
        alert.alert_type.value,
        alert.hour,
        alert.detected_at,
        alert.current_volume,
        alert.previous_volume,
        alert.ratio,
        alert.price,
        alert.funding_rate,
    )
    return alert.with_id(alert_id)


async def publish(redis: Redis, names: RedisNames, alert: Alert) -> bytes:
    entry: bytes = await redis.xadd(names.alerts_stream, {"alert": alert.to_json()})
    return entry


async def statuses(pool: asyncpg.Pool) -> dict[int, str]:
    rows = await pool.fetch("SELECT chat_id, status FROM deliveries")
    return {row["chat_id"]: row["status"] for row in rows}


async def poll_until(predicate: object, timeout: float = 10.0) -> None:
    """Await an async predicate until it is true (checks every 20 ms); fails on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await predicate():  # type: ignore[operator]
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@dataclass
class Delivery:
    tg: FakeTelegram
    bot: Bot
    settings: Settings
    clock: ManualClock
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.task.cancel()
        done, _ = await asyncio.wait({self.task}, timeout=10)
        assert done, "the delivery service did not stop within 10 s of being cancelled"
        if not self.task.cancelled() and self.task.exception() is not None:
            raise self.task.exception()  # type: ignore[misc]


def bot_settings(settings: Settings, tg: FakeTelegram, **overrides: object) -> Settings:
    return settings.model_copy(
        update={"bot_token": SecretStr(TOKEN), "telegram_api_url": tg.url, **overrides}
    )


@contextlib.asynccontextmanager
async def running_delivery(
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    tg: FakeTelegram,
    clock: ManualClock,
    *,
    consumer: str = "test-consumer",
    options: DeliveryOptions = FAST,
    **overrides: object,
) -> AsyncIterator[Delivery]:
    """The delivery service running; the alert stream's consumer group exists when this yields."""
    compile_catalogs()
    config = bot_settings(settings, tg, **overrides)
    names = RedisNames(config.redis_prefix)
    bot = build_bot(config)
    # Its own client, as in production (`run_bot` gets one from the composition root): a read still
    # blocked when the service is cancelled dies with this client, not in the test's shared pool.
    # Named, so a test can find its connections in CLIENT LIST (and CLIENT KILL them).
    service_redis = Redis.from_url(
        config.redis_url, socket_timeout=10, client_name=f"{config.redis_prefix}delivery"
    )
    task = asyncio.create_task(
        run_delivery(
            bot,
            config,
            pool,
            service_redis,
            create_i18n(),
            clock=clock,
            consumer_name=consumer,
            options=options,
        )
    )
    delivery = Delivery(tg, bot, config, clock, task)
    try:

        async def group_exists() -> bool:
            if task.done():
                task.result()
            if not await redis.exists(names.alerts_stream):
                return False
            return any(
                g["name"] == names.delivery_group.encode()
                for g in await redis.xinfo_groups(names.alerts_stream)
            )

        await poll_until(group_exists)
        yield delivery
    finally:
        try:
            await delivery.stop()
        finally:
            await bot.session.close()
            await service_redis.aclose()
