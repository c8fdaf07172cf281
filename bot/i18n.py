"""Translations: aiogram's gettext-backed I18n over the `locales` package's catalogs.

Catalogs live in `locales/<lang>/LC_MESSAGES/messages.po`; the `.mo` files beside them are build
output, compiled by the build hook (`hatch_build.py`) for the wheel and the editable install.
"""

from __future__ import annotations

from aiogram.utils.i18n import I18n

from core.resources import package_dir

LOCALES_DIR = package_dir("locales")
DOMAIN = "messages"
DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "ru", "es", "tr", "uk")

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "ru": "Русский",
    "es": "Español",
    "tr": "Türkçe",
    "uk": "Українська",
}


def create_i18n() -> I18n:
    return I18n(path=LOCALES_DIR, default_locale=DEFAULT_LOCALE, domain=DOMAIN)


def pick_locale(language_code: str | None) -> str:
    """Telegram's `language_code` (e.g. `ru`, `pt-br`, `uk`) to one of ours; English otherwise."""
    if not language_code:
        return DEFAULT_LOCALE
    base = language_code.replace("_", "-").split("-", 1)[0].lower()
    return base if base in SUPPORTED_LOCALES else DEFAULT_LOCALE


def N_(message: str) -> str:
    """Mark a message for extraction where it is translated later (`i18n.gettext(msg, locale=…)`)."""
    return message
