"""Bad input at the bot's door, fuzzed with hypothesis through the real Dispatcher: command
arguments, free text, callback data and whole update bodies.

Each generated update goes through `Dispatcher.feed_update` (what long polling and aiogram's
webhook handler call) with the real Bot talking to the Telegram look-alike, real PostgreSQL and
Redis. What must hold for every input: nothing escapes the dispatcher, no handler fails (the
error handler's "something went wrong" is never needed), and every command, text and button
press in a private chat gets an answer in the user's language. Examples are bounded; no
deadline, so a slow machine only makes the run longer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from aiogram.types import Update
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from redis.asyncio import Redis

from bot.handlers.errors import SOMETHING_WENT_WRONG
from bot.i18n import create_i18n
from core.settings import Settings
from tests.bot_harness import ADMIN_ID, RunningBot, running_bot, seed_symbols
from tests.fakes.telegram_api import BOT_ID, BOT_USERNAME, Call
from tests.telegram_html import html_problems

FREE, PRO, ELITE = 700_000_001, 700_000_002, 700_000_003
SENDERS = (FREE, PRO, ELITE, ADMIN_ID)
CYRILLIC = re.compile(r"[а-яА-ЯёЁіїєґІЇЄҐ]")

COMMANDS = (
    "start", "help", "alerts", "watch", "unwatch", "watchlist", "settings", "status", "language",
    "stop", "grant", "revoke", "ban", "unban", "stats", "health", "broadcast", "connect",
    "disconnect", "mutes", "nosuchcommand",
)  # fmt: skip
CALLBACK_PREFIXES = (
    "mute:", "settings:open", "settings:back", "settings:locked", "settings:locked:elite",
    "settings:menu:", "settings:mult:", "settings:vol:", "settings:type:", "settings:wlonly",
    "settings:pause", "settings:quiet:", "settings:tz", "settings:cancel", "unmute:", "lang:",
    "bc:go:", "bc:no:", "bc:stop:", "chart:", "",
)  # fmt: skip

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# What users type: any Unicode except surrogates (Telegram sends UTF-8), with the characters that
# matter to our parsers (digits, signs, separators, markup) much more likely than chance.
typed = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=("Cs",)),
        st.sampled_from("0123456789-+:;, $#<>&/_.²٣ \n\tBTCUSDTbtc我踏马来了"),
    ),
    max_size=120,
)
words = st.lists(
    st.one_of(typed, st.sampled_from(["BTC", "eth", "1000pepe", "我踏马来了", "pro", "elite", "all", "30"])),
    max_size=6,
).map(" ".join)


class Failures(logging.Handler):
    """Collects "handler failed" records of the error handler."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def failures() -> Iterator[Failures]:
    handler = Failures()
    logger = logging.getLogger("bot.handlers.errors")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    await seed_symbols(db)
    await db.execute(
        "INSERT INTO symbols (symbol, base_asset, quote_asset, contract_type, status) "
        "VALUES ('我踏马来了USDT', '我踏马来了', 'USDT', 'PERPETUAL', 'TRADING')"
    )
    async with running_bot(settings, db, redis) as running:
        for user, tier in ((FREE, "free"), (PRO, "pro"), (ELITE, "elite"), (ADMIN_ID, "elite")):
            await running.add_user(user, tier=tier, language="ru")
        yield running


_ids = iter(range(10_000_000, 99_999_999))


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Trader", "language_code": "ru"}


def message_update(user_id: int, text: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": 1_764_000_000,
        "chat": {"id": user_id, "type": "private", "first_name": "Trader"},
        "from": _user(user_id),
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": next(_ids), "message": message}


def callback_update(user_id: int, data: str) -> dict[str, Any]:
    query_id = str(next(_ids))
    return {
        "update_id": next(_ids),
        "callback_query": {
            "id": query_id,
            "from": _user(user_id),
            "chat_instance": str(user_id),
            "data": data,
            "message": {
                "message_id": 1,
                "date": 1_764_000_000,
                "chat": {"id": user_id, "type": "private", "first_name": "Trader"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "VolSpike"},
                "text": "…",
            },
        },
    }


async def feed(app: RunningBot, raw: dict[str, Any], user_id: int) -> list[Call]:
    """Handle one update to the end; the calls it made to the Telegram look-alike."""
    await app.redis.delete(app.names.throttle(user_id))
    before = len(app.tg.calls)
    update = Update.model_validate(raw, context={"bot": app.bot})
    await app.dp.feed_update(app.bot, update)
    return app.tg.calls[before:]


def answered_in_russian(calls: list[Call], user_id: int) -> bool:
    """Some answer to the user (a message, an edit, a button toast) in the user's language."""
    texts = [
        str(c.params.get("text") or "")
        for c in calls
        if c.method in ("sendMessage", "editMessageText", "answerCallbackQuery")
        and (c.chat_id == user_id or c.method == "answerCallbackQuery")
    ]
    return any(CYRILLIC.search(text) for text in texts)


def check(calls: list[Call], failures: Failures, user_id: int, what: str) -> None:
    assert not failures.records, f"a handler failed on {what!r}: {failures.records[0].exc_info}"
    generic = create_i18n().gettext(SOMETHING_WENT_WRONG, locale="ru")
    assert not any(generic in str(c.params.get("text")) for c in calls), what
    assert answered_in_russian(calls, user_id), (what, [(c.method, c.params) for c in calls])
    for call in calls:  # nothing the real Telegram would refuse
        if call.method in ("sendMessage", "editMessageText"):
            text = str(call.params["text"])
            assert 0 < len(text) <= 4096, what
            if call.params.get("parse_mode") == "HTML":
                assert html_problems(text) == [], (what, text)


@FUZZ
@given(sender=st.sampled_from(SENDERS), command=st.sampled_from(COMMANDS), args=words, mention=st.booleans())
async def test_any_command_arguments_get_a_clear_localized_answer(
    app: RunningBot, failures: Failures, sender: int, command: str, args: str, mention: bool
):
    text = f"/{command}{'@' + BOT_USERNAME if mention else ''} {args}".rstrip()
    calls = await feed(app, message_update(sender, text[:4096]), sender)
    check(calls, failures, sender, text)


@FUZZ
@given(sender=st.sampled_from(SENDERS), text=typed.filter(lambda t: t.strip() and not t.startswith("/")))
async def test_any_free_text_gets_a_clear_localized_answer(
    app: RunningBot, failures: Failures, sender: int, text: str
):
    calls = await feed(app, message_update(sender, text), sender)
    check(calls, failures, sender, text)


@FUZZ
@given(
    sender=st.sampled_from(SENDERS),
    prefix=st.sampled_from(CALLBACK_PREFIXES),
    tail=st.one_of(typed, st.sampled_from(["", "BTCUSDT", "我踏马来了USDT", "4", "nan", "2200-0700"])),
)
async def test_any_callback_data_gets_a_clear_localized_answer(
    app: RunningBot, failures: Failures, sender: int, prefix: str, tail: str
):
    data = (prefix + tail).encode()[:64].decode(errors="ignore")  # Telegram carries 1-64 bytes
    if not data:
        data = "x"
    calls = await feed(app, callback_update(sender, data), sender)
    check(calls, failures, sender, data)
    assert any(c.method == "answerCallbackQuery" for c in calls), data  # the button stops spinning


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | typed,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(typed, inner, max_size=3),
    max_leaves=8,
)


chats = st.fixed_dictionaries(
    {
        "id": st.integers(-(2**52), 2**52),
        "type": st.sampled_from(["private", "group", "supergroup", "channel", "sender", "nonsense"]),
        "title": typed,
    }
)


@st.composite
def update_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A real update shape with parts removed, replaced or added: what a broken or hostile
    client could post to the webhook."""
    sender = draw(st.sampled_from(SENDERS))
    body = draw(
        st.sampled_from(
            [
                message_update(sender, draw(words)),
                callback_update(sender, draw(typed.filter(bool))),
            ]
        )
    )
    kind = "message" if "message" in body else "callback_query"
    event = body[kind]
    for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del event[key]
        else:
            event[key] = draw(json_values)
    if draw(st.booleans()):
        target = event.get("message") if kind == "callback_query" else event
        if isinstance(target, dict):
            target["chat"] = draw(chats)
    if draw(st.booleans()):
        body[draw(st.sampled_from(["edited_message", "channel_post", "my_chat_member", "poll", "x"]))] = draw(
            json_values
        )
    return body


@FUZZ
@given(body=update_bodies())
async def test_any_update_body_is_refused_or_handled_never_crashes(
    app: RunningBot, failures: Failures, body: dict[str, Any]
):
    try:
        update = Update.model_validate(body, context={"bot": app.bot})
    except ValidationError:
        return  # refused before the dispatcher: the webhook answers it with a client error
    for user in SENDERS:
        await app.redis.delete(app.names.throttle(user))
    await app.dp.feed_update(app.bot, update)
    assert not failures.records, f"a handler failed on {body!r}: {failures.records[0].exc_info}"


async def test_the_bot_still_answers_after_the_fuzzing(app: RunningBot):
    [reply] = await app.send(FREE, "/help")
    assert "/watch" in reply.text
