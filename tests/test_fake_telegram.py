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


def _png(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk of the given size: all the look-alike reads of a photo."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x06\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr + b"\x00" * 4


async def test_send_photo_uploads_are_recorded_and_checked_as_telegram_documents_them():
    from aiogram.types import BufferedInputFile

    from tests.fakes.telegram_api import Upload

    async with FakeTelegram() as tg:
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.url)))
        try:
            data = _png(1100, 660)
            message = await bot.send_photo(42, BufferedInputFile(data, "chart.png"), caption="BTCUSDT")
            assert message.photo is not None and (message.photo[0].width, message.photo[0].height) == (
                1100,
                660,
            )
            photo = tg.calls_to("sendPhoto", 42)[0].params["photo"]
            assert isinstance(photo, Upload) and photo.data == data and photo.filename == "chart.png"
            assert tg.delivered_to(42) == tg.calls_to("sendPhoto", 42)
            refusals = {
                "PHOTO_INVALID_DIMENSIONS": (_png(9000, 1001), "x"),
                "IMAGE_PROCESS_FAILED": (b"GIF89a" + b"\x00" * 30, "x"),
                "caption is too long": (data, "x" * 1025),
            }
            for reason, (body, caption) in refusals.items():
                with pytest.raises(TelegramBadRequest, match=reason):
                    await bot.send_photo(42, BufferedInputFile(body, "x.png"), caption=caption)
            with pytest.raises(TelegramBadRequest, match="PHOTO_INVALID_DIMENSIONS"):
                await bot.send_photo(42, BufferedInputFile(_png(2100, 100), "x.png"))  # ratio 21
            assert len(tg.delivered_to(42)) == 1
        finally:
            await bot.session.close()


async def test_edit_message_text_is_answered_as_telegram_does():
    async with FakeTelegram() as tg:
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.url)))
        try:
            sent = await bot.send_message(42, "first")
            edited = await bot.edit_message_text(text="second", chat_id=42, message_id=sent.message_id)
            assert not isinstance(edited, bool)
            assert edited.message_id == sent.message_id and edited.text == "second"
            assert edited.edit_date is not None
            stored = tg.message(42, sent.message_id)
            assert stored is not None and (stored.text, stored.edits) == ("second", 1)
            with pytest.raises(TelegramBadRequest, match="message is not modified: specified new message"):
                await bot.edit_message_text(text="second", chat_id=42, message_id=sent.message_id)
            with pytest.raises(TelegramBadRequest, match="message to edit not found"):
                await bot.edit_message_text(text="x", chat_id=43, message_id=sent.message_id)  # another chat
            with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
                await bot.edit_message_text(text="x" * 4097, chat_id=42, message_id=sent.message_id)
            tg.age_message(42, sent.message_id, 48 * 3600 + 1)
            with pytest.raises(TelegramBadRequest, match="message can't be edited"):
                await bot.edit_message_text(text="third", chat_id=42, message_id=sent.message_id)
            fresh = await bot.send_message(42, "fresh")
            tg.delete_message(42, fresh.message_id)
            with pytest.raises(TelegramBadRequest, match="message to edit not found"):
                await bot.edit_message_text(text="gone", chat_id=42, message_id=fresh.message_id)
            tg.push_message(42, "a user's own words")
            [update] = await bot.get_updates(timeout=1)
            assert update.message is not None
            with pytest.raises(TelegramBadRequest, match="message can't be edited"):
                await bot.edit_message_text(text="no", chat_id=42, message_id=update.message.message_id)
        finally:
            await bot.session.close()
