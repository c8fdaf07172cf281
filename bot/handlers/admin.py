"""Admin commands (only for ADMIN_IDS; anyone else falls through to the unknown-command answer):
`/grant <user_id> <free|pro|elite> [days]`, `/revoke`, `/ban`, `/unban`, `/stats`, `/health`.

Every action is written to `admin_audit` in the same transaction as the change itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import asyncpg
import orjson
from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.admin_texts import banned_text, granted_text, plan_text, revoked_text, unbanned_text
from bot.filters import from_admin
from bot.ids import parse_positive
from bot.payments.notify import tell_user_by_id
from bot.payments.renewals import lower_renewals, stop_renewals
from core.clock import Clock
from core.errors import BadInput
from core.redis_names import RedisNames
from core.settings import Settings
from core.texts import tier_name
from core.tiers import Tier
from db import admin as admin_db
from db import broadcast_fees as fees_db
from db import deliveries as deliveries_db
from db.ingest_health import shards_snapshot

MAX_GRANT_DAYS = 3650


@dataclass(frozen=True, slots=True)
class Grant:
    user_id: int
    tier: Tier
    days: int | None


def parse_user_id(args: str | None) -> int:
    parts = (args or "").split()
    user_id = parse_positive(parts[0]) if len(parts) == 1 else None
    if user_id is None:
        raise ValueError("expected one numeric user id")
    return user_id


def parse_grant(args: str | None) -> Grant:
    """`<user_id> <free|pro|elite> [days]` → Grant; ValueError on anything else."""
    parts = (args or "").split()
    user_id = parse_positive(parts[0]) if len(parts) in (2, 3) else None
    if user_id is None:
        raise ValueError("expected <user_id> <tier> [days]")
    tier = Tier(parts[1].lower())
    days = None
    if len(parts) == 3:
        days = parse_positive(parts[2])
        if days is None or days > MAX_GRANT_DAYS:
            raise ValueError("days must be 1..3650")
    return Grant(user_id, tier, days)


def find_lag_ms(snapshot: Any) -> float | None:
    """The largest `lag_ms` anywhere in a service's health snapshot."""
    found: list[float] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "lag_ms" and isinstance(item, int | float):
                    found.append(float(item))
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(snapshot)
    return max(found) if found else None


async def _ingest_snapshot(redis: Redis, names: RedisNames) -> dict[str, Any] | None:
    raw = await redis.get(names.ingest_health)
    if raw is None:
        return await shards_snapshot(redis, names)  # a sharded ingest: every shard's leader
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


async def _stream_group(redis: Redis, names: RedisNames) -> dict[str, Any] | None:
    try:
        groups = await redis.xinfo_groups(names.alerts_stream)
    except RedisError:
        return None
    for group in groups:
        name = group.get("name")
        if name in (names.delivery_group, names.delivery_group.encode()):
            return dict(group)
    return None


def _ingest_line(snapshot: dict[str, Any] | None) -> str:
    if snapshot is None:
        return _("Ingest: not running")
    lag = find_lag_ms(snapshot)
    if lag is None:
        return _("Ingest: running")
    if lag < 1000:
        return _("Ingest: running, up to date (under a second behind)")
    return _("Ingest: running, {seconds} s behind").format(seconds=f"{lag / 1000:.1f}")


async def grant(
    message: Message,
    command: CommandObject,
    pool: asyncpg.Pool,
    clock: Clock,
    bot: Bot,
    i18n: I18n,
    settings: Settings,
) -> None:
    try:
        request = parse_grant(command.args)
    except ValueError:
        raise BadInput(_("Usage: /grant <user_id> <free|pro|elite> [days]")) from None
    assert message.from_user is not None
    if request.tier is Tier.FREE:
        await revoke_plan(message, request.user_id, pool, clock, bot, i18n, settings)
        return
    now = clock.now()
    until = now + timedelta(days=request.days) if request.days is not None else None
    async with pool.acquire() as conn:
        change = await admin_db.grant(conn, message.from_user.id, request.user_id, request.tier, until, now)
    if change is None:
        raise BadInput(_("User {user_id} has not started the bot yet.").format(user_id=request.user_id))
    if change.after == change.before:
        await message.answer(
            _("User {user_id} already has {plan}, which the grant would not extend: nothing changed.").format(
                user_id=request.user_id, plan=plan_text(change.after)
            )
        )
        return
    lines = [
        _("User {user_id} now has {plan}.").format(user_id=request.user_id, plan=plan_text(change.after))
    ]
    lines += await lower_renewals(pool, request.user_id, change.after.tier, now)
    await message.answer("\n".join(lines))
    await tell_user_by_id(bot, i18n, pool, request.user_id, partial(granted_text, change.after))


async def revoke_plan(
    message: Message,
    user_id: int,
    pool: asyncpg.Pool,
    clock: Clock,
    bot: Bot,
    i18n: I18n,
    settings: Settings,
) -> None:
    assert message.from_user is not None
    now = clock.now()
    async with pool.acquire() as conn:
        change = await admin_db.revoke(conn, message.from_user.id, user_id, now)
    if change is None:
        raise BadInput(_("User {user_id} has not started the bot yet.").format(user_id=user_id))
    lines = [_("User {user_id} is back on the free plan.").format(user_id=user_id)]
    lines += await stop_renewals(pool, bot, settings, user_id, now)
    await message.answer("\n".join(lines))
    if change.before.tier is not Tier.FREE:
        await tell_user_by_id(bot, i18n, pool, user_id, partial(revoked_text, change.before.tier))


async def revoke(
    message: Message,
    command: CommandObject,
    pool: asyncpg.Pool,
    clock: Clock,
    bot: Bot,
    i18n: I18n,
    settings: Settings,
) -> None:
    try:
        user_id = parse_user_id(command.args)
    except ValueError:
        raise BadInput(_("Usage: /revoke <user_id>")) from None
    await revoke_plan(message, user_id, pool, clock, bot, i18n, settings)


async def ban(
    message: Message,
    command: CommandObject,
    pool: asyncpg.Pool,
    clock: Clock,
    bot: Bot,
    i18n: I18n,
    settings: Settings,
) -> None:
    banning = command.command == "ban"
    try:
        user_id = parse_user_id(command.args)
    except ValueError:
        usage = _("Usage: /ban <user_id>") if banning else _("Usage: /unban <user_id>")
        raise BadInput(usage) from None
    assert message.from_user is not None
    if banning and user_id in settings.admin_ids:
        raise BadInput(_("Admins cannot be banned."))
    async with pool.acquire() as conn:
        found = await admin_db.set_banned(conn, message.from_user.id, user_id, banning)
    if not found:
        raise BadInput(_("User {user_id} has not started the bot yet.").format(user_id=user_id))
    text = _("User {user_id} is banned.") if banning else _("User {user_id} is no longer banned.")
    lines = [text.format(user_id=user_id)]
    if banning:
        lines += await stop_renewals(pool, bot, settings, user_id, clock.now())
    await message.answer("\n".join(lines))
    await tell_user_by_id(bot, i18n, pool, user_id, banned_text if banning else unbanned_text)


async def stats(message: Message, pool: asyncpg.Pool, redis: Redis, names: RedisNames, clock: Clock) -> None:
    now = clock.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    async with pool.acquire() as conn:
        figures = await admin_db.stats(conn, now, day_start)
        due, _oldest = await deliveries_db.queue_state(conn, now)
        fees_today = await fees_db.totals_since(conn, day_start)
        fees_all = await fees_db.totals_since(conn)
    group = await _stream_group(redis, names)
    sent = figures.deliveries_today
    lines = [
        _("<b>Stats</b> (today since 00:00 UTC)"),
        _("Users: {counts}").format(
            counts=", ".join(f"{tier_name(tier)} {figures.users_per_tier[tier.value]}" for tier in Tier)
        ),
        _("Active today: {count}").format(count=figures.active_today),
        _("Alerts today: {count}").format(count=figures.alerts_today),
        _(
            "Deliveries: sent {sent}, pending {pending}, failed {failed}, blocked {blocked}, "
            "unknown {unknown}, expired {expired}"
        ).format(
            sent=sent.get("sent", 0),
            pending=sent.get("pending", 0) + sent.get("sending", 0),
            failed=sent.get("failed", 0),
            blocked=sent.get("blocked", 0),
            unknown=sent.get("unknown", 0),
            expired=sent.get("expired", 0),
        ),
        _("Queue: {due} due now, {pending} pending in all, {stream} stream entries unread").format(
            due=due,
            pending=figures.pending_deliveries,
            stream=group["lag"] if group and group.get("lag") is not None else "n/a",
        ),
        _(
            "Paid broadcasts: {messages} messages billed, {stars} Stars today; "
            "{all_messages} messages, {all_stars} Stars in all"
        ).format(
            messages=fees_today.messages,
            stars=f"{fees_today.stars:.1f}",
            all_messages=fees_all.messages,
            all_stars=f"{fees_all.stars:.1f}",
        ),
        _ingest_line(await _ingest_snapshot(redis, names)),
    ]
    await message.answer("\n".join(lines))


async def health(message: Message, pool: asyncpg.Pool, redis: Redis, names: RedisNames, clock: Clock) -> None:
    lines = [_("<b>Health</b>")]
    started = time.perf_counter()
    try:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
            due, _oldest = await deliveries_db.queue_state(conn, clock.now())
            pending = (await admin_db.stats(conn, clock.now(), clock.now())).pending_deliveries
        lines.append(
            _("PostgreSQL: ok ({ms} ms)").format(ms=round((time.perf_counter() - started) * 1000, 1))
        )
    except (OSError, asyncpg.PostgresError) as exc:
        lines.append(_("PostgreSQL: down ({error})").format(error=type(exc).__name__))
        due = pending = -1
    started = time.perf_counter()
    try:
        await redis.ping()
        lines.append(_("Redis: ok ({ms} ms)").format(ms=round((time.perf_counter() - started) * 1000, 1)))
        lines.append(_ingest_line(await _ingest_snapshot(redis, names)))
    except (OSError, RedisError) as exc:
        lines.append(_("Redis: down ({error})").format(error=type(exc).__name__))
    if due >= 0:
        lines.append(_("Deliveries: {due} due now, {pending} pending").format(due=due, pending=pending))
    await message.answer("\n".join(lines))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(from_admin)
    router.message.register(grant, Command("grant"))
    router.message.register(revoke, Command("revoke"))
    router.message.register(ban, Command("ban", "unban"))
    router.message.register(stats, Command("stats"))
    router.message.register(health, Command("health"))
    return router
