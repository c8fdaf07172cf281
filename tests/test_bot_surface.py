"""Every command, button, prompt and payment update of the bot, by use (the table in
tests/bot_surface.py): each row through the real Dispatcher and the Telegram look-alike must show
the user what the table says, in English and in Russian; and every message or callback handler
of the Dispatcher must be reached by a row, every command and callback data its filters name
must be sent by one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiogram import Dispatcher, Router
from aiogram.filters import Command, StateFilter
from aiogram.types import TelegramObject
from aiogram.utils.magic_filter import MagicFilter
from redis.asyncio import Redis

from bot.app import build_dispatcher
from bot.i18n import create_i18n
from core.clock import ManualClock
from core.settings import Settings
from tests.bot_harness import ADMIN_ID
from tests.bot_surface import GROUP_CHAT, SURFACE, Use
from tests.fakes.telegram_api import Call
from tests.fakes.telegram_payments import StarCharge
from tests.stars_harness import PRO_PRICE, StarsBot, stars_bot

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
OBSERVERS = ("message", "callback_query")


@pytest.fixture
async def sb(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[StarsBot]:
    await db.executemany(
        "INSERT INTO symbols (symbol, base_asset, quote_asset, contract_type, status) "
        "VALUES ($1, $2, 'USDT', 'PERPETUAL', 'TRADING') ON CONFLICT DO NOTHING",
        [("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")],
    )
    async with stars_bot(settings, db, redis, clock=ManualClock(NOW)) as running:
        yield running


def handlers(dp: Dispatcher) -> Iterator[tuple[Router, str, Any]]:
    for router in dp.sub_routers:
        for observer in OBSERVERS:
            for handler in getattr(router, observer).handlers:
                yield router, observer, handler


def handler_name(router: Router, observer: str, callback: Callable[..., Any]) -> str:
    return f"{router.name}:{observer}:{callback.__name__}"


def visible(call: Call) -> str:
    """What a person sees of a call: its text, an invoice's title and description, button labels,
    a pre-checkout answer's verdict."""
    params = call.params
    parts = [str(params.get(key, "")) for key in ("text", "title", "description", "error_message")]
    markup = params.get("reply_markup") or {}
    if isinstance(markup, dict):
        parts += [b.get("text", "") for row in markup.get("inline_keyboard", []) for b in row]
    if call.method == "answerPreCheckoutQuery" and str(params.get("ok")).lower() == "true":
        parts.append("ok")
    return "\n".join(parts)


class Runner:
    def __init__(self, sb: StarsBot, language: str) -> None:
        self.sb = sb
        self.app = sb.app
        self.language = language
        self.charges: dict[int, StarCharge] = {}

    async def user_for(self, index: int, use: Use) -> int:
        if use.admin:
            user_id = ADMIN_ID
            await self.app.pool.execute(
                "INSERT INTO users (id, first_name, language) VALUES ($1, 'Admin', $2) "
                "ON CONFLICT (id) DO UPDATE SET language = EXCLUDED.language",
                user_id,
                self.language,
            )
            await self.app.pool.execute(
                "INSERT INTO user_settings (user_id) VALUES ($1) ON CONFLICT DO NOTHING", user_id
            )
            return user_id
        user_id = 610_000_000 + index * 10 + (0 if self.language == "en" else 1)
        await self.app.add_user(user_id, tier=use.tier, language=self.language)
        return user_id

    async def act(self, user_id: int, sends: str, use: Use) -> Callable[[Call], bool]:
        """Do one thing; returns which of the following calls answer it."""
        tg = self.app.tg
        await self.app.redis.delete(self.app.names.throttle(user_id))
        chat = GROUP_CHAT if use.group else user_id
        if use.kind == "payment" and sends in ("pre_checkout", "paid", "refunded"):
            stars = self.sb.stars
            if sends == "pre_checkout":
                await self.sb.feed(stars.pre_checkout_update(user_id, self.sb.payload(user_id), PRO_PRICE))
                return lambda c: c.method == "answerPreCheckoutQuery"
            if sends == "paid":
                charge = stars.charge(user_id, self.sb.payload(user_id), PRO_PRICE)
                self.charges[user_id] = charge
                await self.sb.feed(stars.successful_payment_update(charge))
            else:
                await self.sb.feed(stars.refunded_payment_update(self.charges[user_id]))
            return lambda c: c.chat_id == user_id
        if use.kind == "button" or (sends in use.before and not sends.startswith("/")):
            update_id = tg.push_callback(user_id, sends, language_code=self.language)
            query_id = str(update_id - 1)  # the look-alike numbers the query just before the update
            return lambda c: c.chat_id == user_id or c.params.get("callback_query_id") == query_id
        tg.push_message(
            user_id,
            sends,
            chat_id=chat,
            chat_type="group" if use.group else "private",
            language_code=self.language,
            reply_to=await self.support_message(user_id) if use.reply_to_support else None,
        )
        return lambda c: c.chat_id == chat

    async def support_message(self, admin_id: int) -> dict[str, Any]:
        """The last support message forwarded into the admin's chat, to reply to."""
        pattern = f"{self.app.names.prefix}support:{admin_id}:*"
        ids = [int(key.decode().rsplit(":", 1)[1]) async for key in self.app.redis.scan_iter(match=pattern)]
        assert ids, "no support message was forwarded to the admin"
        chat = {"id": admin_id, "type": "private", "first_name": "Admin"}
        return {"message_id": max(ids), "date": 0, "chat": chat, "text": "…"}

    async def run(self, index: int, use: Use) -> str | None:
        """Do the row; None when the user saw what they must, else what went wrong."""
        user_id = await self.user_for(index, use)
        for step in use.before:
            kind = "payment" if step == "paid" else "command" if step.startswith("/") else "button"
            start = len(self.app.tg.calls)
            answers = await self.act(user_id, step, Use(kind, step, {}))
            await self.app.tg.wait_for(lambda calls, a=answers, s=start: any(a(c) for c in calls[s:]))
        start = len(self.app.tg.calls)
        mine = await self.act(user_id, use.sends, use)
        expected = use.sees[self.language]

        def seen(calls: list[Call]) -> bool:
            return any(mine(c) and expected in visible(c) for c in calls[start:])

        try:
            await self.app.tg.wait_for(seen, timeout=5)
        except AssertionError:
            shown = [visible(c)[:120] for c in self.app.tg.calls[start:] if mine(c)]
            return f"{use.kind} {use.sends!r} ({self.language}): expected {expected!r}, saw {shown}"
        return None


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_every_command_button_and_prompt_shows_what_the_table_says(sb: StarsBot, language: str):
    hits: set[str] = set()

    def recorder(router: Router, observer: str) -> Callable[..., Awaitable[Any]]:
        async def record(
            handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
            event: TelegramObject,
            data: dict[str, Any],
        ) -> Any:
            hits.add(handler_name(router, observer, data["handler"].callback))  # the one that runs
            return await handler(event, data)

        return record

    for router in sb.app.dp.sub_routers:
        for observer in OBSERVERS:
            getattr(router, observer).middleware(recorder(router, observer))

    runner = Runner(sb, language)
    problems = [problem for index, use in enumerate(SURFACE) if (problem := await runner.run(index, use))]
    assert problems == []
    every = {handler_name(r, o, h.callback) for r, o, h in handlers(sb.app.dp)}
    assert every - hits == set(), "handlers no row of tests/bot_surface.py reaches"


def strings(magic: MagicFilter) -> Iterator[str]:
    """The constants a magic filter compares callback data with (`==`, `startswith`, `in_`, `|`)."""
    for operation in magic._operations:
        values = [getattr(operation, slot, None) for slot in ("right", "args")]
        for value in values:
            if isinstance(value, MagicFilter):
                yield from strings(value)
            elif isinstance(value, str):
                yield value
            elif isinstance(value, tuple | set | frozenset):
                for item in value:
                    if isinstance(item, str):
                        yield item
                    elif isinstance(item, set | frozenset | tuple):
                        yield from (x for x in item if isinstance(x, str))


def test_every_command_and_callback_data_a_filter_names_has_a_row(settings: Settings) -> None:
    dp = build_dispatcher(settings, None, None, i18n=create_i18n(), clock=ManualClock(NOW))  # type: ignore[arg-type]
    commands = {use.sends.split()[0].lstrip("/").lower() for use in SURFACE if use.kind == "command"}
    buttons = [use.sends for use in SURFACE if use.kind == "button"]
    states = {use.state for use in SURFACE if use.kind == "prompt"}
    missing: list[str] = []
    for router, observer, handler in handlers(dp):
        for filter_object in handler.filters or []:
            check = filter_object.callback
            if isinstance(check, Command):  # CommandStart is a Command too
                for name in check.commands:
                    if isinstance(name, str) and name.lower() not in commands:
                        missing.append(f"command /{name} ({router.name})")
            elif isinstance(check, StateFilter):
                for state in check.states:
                    name = getattr(state, "state", state)
                    if name not in states:
                        missing.append(f"prompt {name} ({router.name})")
            elif observer == "callback_query" and isinstance(filter_object.magic, MagicFilter):
                for value in strings(filter_object.magic):
                    if not any(data == value or data.startswith(value) for data in buttons):
                        missing.append(f"button {value} ({router.name})")
    assert missing == []
