"""`volspike doctor`: every setting and dependency the configured services need, one line each.

Imports happen before any check starts (aiogram's take seconds), so no check's timeout pays for
them. Each check answers within a few seconds and says what to do when it fails. A check that does not
apply to this configuration (no bot token, Stripe off) is skipped, not failed. The exit code is 0
only when nothing failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import websockets
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.app import build_bot
from core.settings import Settings
from db.migrate import pending_versions
from ingest.streams import stream_url

TIMEOUT = 5.0

Status = Literal["ok", "skip", "FAIL"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        tail = f" — {self.fix}" if self.status == "FAIL" and self.fix else ""
        return f"{self.status:<4}  {self.name:<16} {self.detail}{tail}"


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


async def check_postgres(settings: Settings) -> list[Check]:
    where = _where(settings.database_url)
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=TIMEOUT)
    except asyncpg.InvalidCatalogNameError:
        return [
            Check("postgres", "ok", f"server answers at {where}"),
            Check(
                "migrations",
                "FAIL",
                f"database {settings.database_name!r} does not exist",
                "run `volspike migrate` (it creates the database)",
            ),
        ]
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return [
            Check(
                "postgres",
                "FAIL",
                f"cannot connect to {where} ({_error(exc)})",
                "start PostgreSQL or fix DATABASE_URL",
            )
        ]
    try:
        version = await conn.fetchval("SHOW server_version")
        pending = await pending_versions(conn)
    finally:
        await conn.close()
    checks = [Check("postgres", "ok", f"PostgreSQL {version} at {where}")]
    if pending:
        checks.append(
            Check("migrations", "FAIL", f"{len(pending)} pending: {pending}", "run `volspike migrate`")
        )
    else:
        checks.append(Check("migrations", "ok", "schema is up to date"))
    return checks


async def check_redis(settings: Settings) -> list[Check]:
    where = _where(settings.redis_url)
    client: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    try:
        info = await client.info("server")
    except (RedisError, OSError) as exc:
        return [
            Check("redis", "FAIL", f"cannot reach {where} ({_error(exc)})", "start Redis or fix REDIS_URL")
        ]
    finally:
        await client.aclose()
    return [Check("redis", "ok", f"Redis {info.get('redis_version', '?')} at {where}")]


async def check_binance(settings: Settings) -> list[Check]:
    checks = []
    url = f"{settings.binance_rest_url.rstrip('/')}/fapi/v1/ping"
    fix = "check BINANCE_REST_URL and the network (or run the simulator: `volspike sim`)"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http,
            http.get(url) as response,
        ):
            if response.status == 200:
                checks.append(Check("binance rest", "ok", f"{url} answers"))
            else:
                checks.append(Check("binance rest", "FAIL", f"{url} answered HTTP {response.status}", fix))
    except (aiohttp.ClientError, TimeoutError) as exc:
        checks.append(Check("binance rest", "FAIL", f"{url} does not answer ({_error(exc)})", fix))

    ws = stream_url(settings.binance_ws_url, ["btcusdt@kline_1m"])
    try:
        async with websockets.connect(ws, open_timeout=TIMEOUT, close_timeout=1):
            checks.append(Check("binance ws", "ok", f"{settings.binance_ws_url} accepts market streams"))
    except (OSError, websockets.WebSocketException, TimeoutError) as exc:
        checks.append(
            Check(
                "binance ws",
                "FAIL",
                f"{settings.binance_ws_url} refuses market streams ({_error(exc)})",
                "check BINANCE_WS_URL and the network",
            )
        )
    return checks


async def check_bot(settings: Settings) -> list[Check]:
    if settings.bot_token is None:
        return [Check("bot token", "skip", "BOT_TOKEN is not set: `volspike run` starts without the bot")]
    bot = build_bot(settings)
    try:
        me = await bot.get_me(request_timeout=int(TIMEOUT))
    except TelegramNetworkError as exc:
        return [
            Check(
                "bot token",
                "FAIL",
                f"{settings.telegram_api_url} does not answer ({exc.message})",
                "check TELEGRAM_API_URL and the network",
            )
        ]
    except TelegramAPIError as exc:
        return [
            Check(
                "bot token",
                "FAIL",
                f"getMe refused it ({exc.message})",
                "copy the token from @BotFather again",
            )
        ]
    finally:
        await bot.session.close()
    return [Check("bot token", "ok", f"accepted by getMe: @{me.username} (id {me.id})")]


def check_webapp_url(settings: Settings) -> list[Check]:
    url = settings.webapp_url
    if url is None:
        if settings.bot_token is None:
            return [Check("webapp url", "skip", "WEBAPP_URL is not set (only needed for the bot's buttons)")]
        return [
            Check(
                "webapp url",
                "FAIL",
                "WEBAPP_URL is not set: the bot's Mini App buttons have nowhere to go",
                "set WEBAPP_URL to the public https:// address of the webapp",
            )
        ]
    if urlsplit(url).scheme != "https":
        return [
            Check(
                "webapp url",
                "FAIL",
                f"{url} is not HTTPS: Telegram opens Mini Apps over HTTPS only",
                "put the webapp behind TLS and set WEBAPP_URL to its https:// address",
            )
        ]
    return [Check("webapp url", "ok", f"{url} is HTTPS")]


def check_stripe(settings: Settings) -> list[Check]:
    pairs = {
        "STRIPE_SECRET_KEY": settings.stripe_secret_key is not None,
        "STRIPE_WEBHOOK_SECRET": settings.stripe_webhook_secret is not None,
    }
    prices = {
        "STRIPE_PRICE_PRO": settings.stripe_price_pro is not None,
        "STRIPE_PRICE_ELITE": settings.stripe_price_elite is not None,
    }
    if not any(pairs.values()) and not any(prices.values()):
        return [Check("stripe", "skip", "Stripe is off (no STRIPE_* settings)")]
    missing = [name for name, present in {**pairs, **prices}.items() if not present]
    if missing:
        return [
            Check(
                "stripe",
                "FAIL",
                f"set only in part: {', '.join(missing)} missing",
                "set the secret key, the webhook secret and both prices together, or none of them",
            )
        ]
    return [Check("stripe", "ok", "secret key, webhook secret and both prices are set")]


async def _guarded(
    name: str, check: Callable[[Settings], Awaitable[list[Check]]], s: Settings
) -> list[Check]:
    try:
        return await asyncio.wait_for(check(s), TIMEOUT * 3)
    except TimeoutError:
        return [
            Check(name, "FAIL", f"no answer within {TIMEOUT * 3:.0f} s", "check the address and the network")
        ]


async def run_checks(settings: Settings) -> list[Check]:
    groups = await asyncio.gather(
        _guarded("postgres", check_postgres, settings),
        _guarded("redis", check_redis, settings),
        _guarded("binance", check_binance, settings),
        _guarded("bot token", check_bot, settings),
    )
    checks = [c for group in groups for c in group]
    return checks + check_webapp_url(settings) + check_stripe(settings)


async def doctor(settings: Settings) -> int:
    checks = await run_checks(settings)
    for check in checks:
        print(check.line(), flush=True)
    failed = [c for c in checks if c.status == "FAIL"]
    print(f"{len(failed)} problem(s) found" if failed else "all checks passed")
    return 1 if failed else 0
