"""Buttons that open the Mini App (only when WEBAPP_URL is set)."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo
from aiogram.utils.i18n import gettext as _


def chart_url(webapp_url: str, symbol: str) -> str:
    return f"{webapp_url}/chart/{symbol}"


def open_app_keyboard(webapp_url: str | None) -> InlineKeyboardMarkup | None:
    if not webapp_url:
        return None
    button = InlineKeyboardButton(text=_("Open VolSpike"), web_app=WebAppInfo(url=f"{webapp_url}/"))
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def chart_keyboard(webapp_url: str, symbol: str) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(
        text=_("Open {symbol} chart").format(symbol=symbol),
        web_app=WebAppInfo(url=chart_url(webapp_url, symbol)),
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])
