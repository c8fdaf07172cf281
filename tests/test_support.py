"""Payment support that reaches a person (issue #20 item 2), through the real Dispatcher and the
Telegram look-alike: /paysupport lists the user's charges and opens a conversation whose
messages reach the admins with the user's id, plan and payments; an admin's reply reaches the
user; Done or a time-out ends it; /help and the command menu list the payment commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.i18n import create_i18n
from bot.menu import setup_menu
from core.clock import ManualClock
from core.settings import Settings
from tests.bot_harness import ADMIN_ID
from tests.stars_harness import PRO_PRICE, StarsBot, stars_bot

USER = 6061
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
NOT_A_COMMAND = "I answer to commands"


@pytest.fixture
async def sb(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[StarsBot]:
    async with stars_bot(settings, db, redis, clock=ManualClock(NOW)) as running:
        await running.app.add_user(ADMIN_ID)
        yield running


async def paid(sb: StarsBot) -> str:
    charge = sb.stars.charge(USER, sb.payload(USER), PRO_PRICE)
    await sb.feed(sb.stars.successful_payment_update(charge))
    return charge.charge_id


async def test_paysupport_lists_the_recent_charges_and_offers_done(sb: StarsBot):
    await sb.app.add_user(USER)
    charge = await paid(sb)
    [reply] = await sb.app.send(USER, "/paysupport")
    assert "Your recent payments:" in reply.text
    assert (
        f" UTC: Pro, 250 ⭐, paid — charge <code>{charge}</code>" in reply.text
    )  # created_at: the db's time
    assert reply.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "support:done"


async def test_paysupport_in_russian(sb: StarsBot):
    await sb.app.add_user(USER, language="ru")
    [reply] = await sb.app.send(USER, "/paysupport")
    assert "Поддержка по оплате" in reply.text and "У вас пока нет платежей" in reply.text


async def test_the_next_message_reaches_the_admins_and_their_reply_reaches_the_user(sb: StarsBot):
    await sb.app.add_user(USER, language="es")
    charge = await paid(sb)
    await sb.app.send(USER, "/paysupport")
    [ack] = await sb.app.send(USER, "I paid twice for Pro")
    assert "equipo de VolSpike" in ack.text
    [header] = [c for c in sb.app.tg.calls_to("sendMessage", ADMIN_ID)]
    assert f"Support request from user {USER} (Trader), plan: Pro until" in header.text
    assert charge in header.text
    [copy] = sb.app.tg.calls_to("copyMessage", ADMIN_ID)
    assert int(copy.params["from_chat_id"]) == USER

    # The admin replies to the header (the look-alike numbered it: the first linked message id).
    header_message_id = await first_support_message_id(sb)
    before = len(sb.app.tg.calls_to("copyMessage", USER))
    await sb.app.send(
        ADMIN_ID,
        "We refunded one of them.",
        reply_to={
            "message_id": header_message_id,
            "date": 0,
            "chat": {"id": ADMIN_ID, "type": "private", "first_name": "Admin"},
            "text": "…",
        },
    )
    texts = sb.app.tg.sent_texts(USER)
    assert "Soporte de VolSpike" in texts[-1]
    copies = sb.app.tg.calls_to("copyMessage", USER)
    assert len(copies) == before + 1 and int(copies[-1].params["from_chat_id"]) == ADMIN_ID
    assert f"Sent to user {USER}." in sb.app.tg.sent_texts(ADMIN_ID)[-1]


async def first_support_message_id(sb: StarsBot) -> int:
    keys = [k async for k in sb.app.redis.scan_iter(match=f"{sb.app.names.prefix}support:{ADMIN_ID}:*")]
    return min(int(k.decode().rsplit(":", 1)[1]) for k in keys)


async def test_done_ends_the_conversation(sb: StarsBot):
    await sb.app.add_user(USER)
    await sb.app.send(USER, "/paysupport")
    toast = await sb.app.press(USER, "support:done")
    assert "We answer here" in toast.params["text"]
    [reply] = await sb.app.send(USER, "hello?")
    assert NOT_A_COMMAND in reply.text
    assert sb.app.tg.calls_to("copyMessage", ADMIN_ID) == []


async def test_the_conversation_times_out(sb: StarsBot):
    await sb.app.add_user(USER)
    await sb.app.send(USER, "/paysupport")
    sb.app.clock.set(NOW + timedelta(minutes=31))
    [reply] = await sb.app.send(USER, "still there?")
    assert NOT_A_COMMAND in reply.text
    assert sb.app.tg.calls_to("copyMessage", ADMIN_ID) == []


async def test_a_banned_user_still_reaches_payment_support(sb: StarsBot):
    await sb.app.add_user(USER, banned=True)
    [reply] = await sb.app.send(USER, "/paysupport")
    assert "Payment support" in reply.text
    await sb.app.send(USER, "why was I charged?")
    assert sb.app.tg.calls_to("copyMessage", ADMIN_ID)


@pytest.mark.parametrize(
    ("language", "line"), [("en", "/paysupport — help with a payment"), ("ru", "/paysupport")]
)
async def test_help_lists_the_payment_commands(sb: StarsBot, language: str, line: str):
    await sb.app.add_user(USER, language=language)
    [reply] = await sb.app.send(USER, "/help")
    for command in ("/subscribe", "/subscription", "/terms", line):
        assert command in reply.text


async def test_the_command_menu_lists_the_payment_commands(sb: StarsBot):
    await setup_menu(sb.app.bot, sb.app.settings, create_i18n())
    menus = {c.params.get("language_code"): c.params["commands"] for c in sb.app.tg.calls_to("setMyCommands")}
    for language in (None, "ru"):
        names = [c["command"] for c in menus[language]]
        assert {"subscribe", "subscription", "paysupport", "terms"} <= set(names)
    ru = {c["command"]: c["description"] for c in menus["ru"]}
    assert ru["paysupport"] == "Помощь с оплатой"
