"""The daily cap's summary message (core.daily_cap): a held-back SPIKE edits the day's summary to
add itself, or sends the first summary of the day (`bot.delivery.edit_or_send`). The row ends
`sent` with the summary's message id and `capped` set; an unknown outcome is `unknown` like any
send, never repeated."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.alert_message import SETTINGS_OPEN
from core.daily_cap import CapDay, summary_text
from core.texts import html_text


def render_summary(
    day: CapDay, asset: str, ratio: float, *, i18n: I18n, locale: str
) -> tuple[str, InlineKeyboardMarkup]:
    """The summary with the row being held back added to today's list."""

    def t(msgid: str) -> str:
        return i18n.gettext(msgid, locale=locale)

    text = summary_text(day.cap, (*day.held, (asset, ratio)), day.held_count + 1, t)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t("Settings"), callback_data=SETTINGS_OPEN)]]
    )
    return html_text(text), keyboard
