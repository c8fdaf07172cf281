"""The Telegram look-alike answers the real aiogram client as Telegram does."""

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from tests.fakes.telegram_api import TOKEN, FakeTelegram


async def test_real_aiogram_bot_round_trips_through_the_look_alike():
    async with FakeTelegram() as tg:
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.url)))
        try:
            me = await bot.get_me()
            assert me.username == "volspike_test_bot"
            keyboard = InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="Chart", url="https://example.com")]]
            )
            msg = await bot.send_message(42, "hello", reply_markup=keyboard)
            assert msg.chat.id == 42 and msg.text == "hello"
            call = tg.calls_to("sendMessage")[0]
            assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Chart"

            tg.rate_limit(3)
            with pytest.raises(TelegramRetryAfter) as info:
                await bot.send_message(42, "again")
            assert info.value.retry_after == 3

            tg.blocked_chats.add(43)
            with pytest.raises(TelegramForbiddenError):
                await bot.send_message(43, "x")
            tg.missing_chats.add(44)
            with pytest.raises(TelegramBadRequest, match="chat not found"):
                await bot.send_message(44, "x")

            tg.push_message(42, "/start")
            updates = await bot.get_updates(timeout=1)
            assert updates[0].message is not None and updates[0].message.text == "/start"
        finally:
            await bot.session.close()
