"""Alert delivery: the fan-out worker, the sender and the broadcast runner, run together.

`run_delivery` is what `bot.app.run_bot` starts; it runs until cancelled. All three parts share
one `RateLimiter`, so alerts and broadcasts together stay within Telegram's limits (alerts first).
Each part runs under the supervisor: one that crashes is restarted with backoff, the others go on.
The sender reports through a `SenderState` (stopped, and why), which the bot's heartbeat shows.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from aiogram import Bot
from aiogram.utils.i18n import I18n
from redis.asyncio import Redis

from bot.delivery.fanout import Fanout
from bot.delivery.limiter import PAID_BROADCAST_RATE, RateLimiter
from bot.delivery.sender import DEFAULT_LEASE, SEND_TIMEOUT, SHUTDOWN_GRACE, Sender, SenderState
from bot.delivery.worker import StreamWorker
from core.clock import Clock
from core.redis_names import RedisNames
from core.settings import Settings
from core.supervisor import supervise

__all__ = ["DeliveryOptions", "SenderState", "default_consumer_name", "run_delivery"]


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """Tunables with production defaults; tests shorten the waits."""

    poll_interval: float = 0.5  # sender: look for due rows at least this often (seconds)
    claim_idle: float = 30.0  # worker: XAUTOCLAIM entries pending longer than this (seconds)
    claim_interval: float = 10.0  # worker: how often to look for such entries (seconds)
    block: float = 1.0  # worker: XREADGROUP BLOCK (seconds)
    sweep_interval: float = 5.0  # worker: fan out from PostgreSQL at least this often (seconds)
    consumer_idle: float = 600.0  # worker: remove other consumers idle this long, nothing pending
    retry_first: float = 0.5  # worker: first backoff after PostgreSQL/Redis became unavailable
    restart_first: float = 1.0  # supervisor: first backoff before a crashed part is restarted
    lease: timedelta = DEFAULT_LEASE  # sender: `sending` rows older than this are `unknown`
    grace: float = SHUTDOWN_GRACE  # sender: seconds open requests get on shutdown
    send_timeout: int = SEND_TIMEOUT  # sender: seconds for one sendMessage
    broadcast_poll: float = 1.0  # broadcast runner: look for running broadcasts this often
    progress_every: float = 3.0  # broadcast runner: edit the progress message this often
    claim_lanes: bool = True  # sender: with paid broadcasts, elite and the rest claimed in two lanes


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def run_delivery(
    bot: Bot,
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    i18n: I18n,
    *,
    clock: Clock,
    consumer_name: str | None = None,
    options: DeliveryOptions | None = None,
    state: SenderState | None = None,
) -> None:
    """Run the stream worker, the sender and the broadcast runner until cancelled."""
    # Imported here: bot.delivery.broadcast itself imports this package (its limiter and metrics).
    from bot.delivery.broadcast import BroadcastRunner

    opts = options or DeliveryOptions()
    paid_rate = PAID_BROADCAST_RATE if settings.telegram_paid_broadcast else 0.0
    limiter = RateLimiter(settings.telegram_global_rate, paid_rate=paid_rate)
    sender = Sender(
        bot,
        pool,
        i18n,
        limiter,
        clock=clock,
        webapp_url=settings.webapp_url,
        lease=opts.lease,
        poll_interval=opts.poll_interval,
        max_age=settings.alert_max_age,
        grace=opts.grace,
        send_timeout=opts.send_timeout,
        paid_broadcast=settings.telegram_paid_broadcast,
        lanes=opts.claim_lanes,
        state=state,
        digest_min_symbols=settings.digest_min_symbols,
    )
    fanout = Fanout(pool, clock=clock, max_age=settings.alert_max_age, on_inserted=sender.wake)
    worker = StreamWorker(
        redis,
        RedisNames(settings.redis_prefix),
        fanout,
        consumer=consumer_name or default_consumer_name(),
        min_idle=opts.claim_idle,
        claim_interval=opts.claim_interval,
        block=opts.block,
        sweep_interval=opts.sweep_interval,
        consumer_idle=opts.consumer_idle,
        retry_first=opts.retry_first,
    )
    broadcasts = BroadcastRunner(
        bot, pool, i18n, limiter, poll=opts.broadcast_poll, progress_every=opts.progress_every
    )
    await supervise(
        {"delivery-sender": sender.run, "delivery-worker": worker.run, "broadcast-runner": broadcasts.run},
        restart_first=opts.restart_first,
    )
