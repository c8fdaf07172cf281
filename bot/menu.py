"""The command menu (`setMyCommands`, once per language) and the Mini App menu button."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    MenuButtonDefault,
    MenuButtonWebApp,
    WebAppInfo,
)
from aiogram.utils.i18n import I18n

from core.i18n import DEFAULT_LOCALE, N_, SUPPORTED_LOCALES
from core.settings import Settings

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("Welcome and what VolSpike does")),
    ("alerts", N_("Latest volume spikes")),
    ("watch", N_("Add symbols to your watchlist")),
    ("unwatch", N_("Remove symbols from your watchlist")),
    ("watchlist", N_("Show your watchlist")),
    ("settings", N_("Thresholds, alert types, quiet hours")),
    ("mutes", N_("Muted symbols, and lift a mute")),
    ("status", N_("Your plan and what is on")),
    ("subscribe", N_("Plans and prices")),
    ("subscription", N_("Your plan and its renewal")),
    ("paysupport", N_("Help with a payment")),
    ("terms", N_("Terms of payment")),
    ("language", N_("Change the language")),
    ("stop", N_("Pause all alerts")),
    ("help", N_("How to use the bot")),
)


def bot_commands(i18n: I18n, locale: str) -> list[BotCommand]:
    return [
        BotCommand(command=name, description=i18n.gettext(text, locale=locale)) for name, text in COMMANDS
    ]


async def setup_menu(bot: Bot, settings: Settings, i18n: I18n) -> None:
    """Commands for every language (the default list in English) and the menu button."""
    scope = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands(bot_commands(i18n, DEFAULT_LOCALE), scope=scope)
    for locale in SUPPORTED_LOCALES:
        await bot.set_my_commands(bot_commands(i18n, locale), scope=scope, language_code=locale)
    if settings.webapp_url:
        button: MenuButtonWebApp | MenuButtonDefault = MenuButtonWebApp(
            text="VolSpike", web_app=WebAppInfo(url=f"{settings.webapp_url}/")
        )
    else:
        button = MenuButtonDefault()
    await bot.set_chat_menu_button(menu_button=button)
