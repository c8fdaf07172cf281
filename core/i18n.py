"""Translations: the `locales` package's gettext catalogs and the one way texts look them up.

Catalogs live in `locales/<lang>/LC_MESSAGES/messages.po`; the `.mo` files beside them are build
output, compiled by the build hook (`hatch_build.py`) for the wheel and the editable install.

`gettext` (imported as `_` by the texts in core and the bot) translates with the translator of the
current context in its current locale: `with i18n.context(), i18n.use_locale("ru"): ...`. The
webapp uses `I18n` here; the bot uses aiogram's I18n (`bot.i18n.create_i18n`), whose context also
sets this one, so the same texts translate in both.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol

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


class Translator(Protocol):
    """What a text needs to be translated (this module's `I18n` and aiogram's have it)."""

    def gettext(
        self, singular: str, plural: str | None = None, n: int = 1, locale: str | None = None
    ) -> str: ...


_current: ContextVar[Translator | None] = ContextVar("volspike_translator", default=None)


@contextmanager
def use_translator(translator: Translator) -> Iterator[None]:
    """Make `translator` the one `gettext` uses in this context."""
    token = _current.set(translator)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(singular: str, plural: str | None = None, n: int = 1, locale: str | None = None) -> str:
    """`singular` (or `plural` for `n`) in the current context's language; raises LookupError
    outside an i18n context."""
    translator = _current.get()
    if translator is None:
        raise LookupError("I18n context is not set")
    return translator.gettext(singular, plural, n, locale)


class I18n:
    """The compiled catalogs, one per locale, with a current locale per context."""

    def __init__(
        self, *, path: Path = LOCALES_DIR, default_locale: str = DEFAULT_LOCALE, domain: str = DOMAIN
    ):
        self.path = Path(path).resolve()
        self.default_locale = default_locale
        self.domain = domain
        self._locale: ContextVar[str] = ContextVar("volspike_locale", default=default_locale)
        self.locales = self._load()

    def _load(self) -> dict[str, _gettext.GNUTranslations]:
        found: dict[str, _gettext.GNUTranslations] = {}
        for folder in sorted(self.path.iterdir()):
            mo_path = folder / "LC_MESSAGES" / f"{self.domain}.mo"
            if mo_path.exists():
                with mo_path.open("rb") as fp:
                    found[folder.name] = _gettext.GNUTranslations(fp)
            elif mo_path.with_suffix(".po").exists():
                raise RuntimeError(f"Found locale '{folder.name}' but this language is not compiled!")
        return found

    @property
    def available_locales(self) -> tuple[str, ...]:
        return tuple(self.locales)

    @property
    def current_locale(self) -> str:
        return self._locale.get()

    @contextmanager
    def use_locale(self, locale: str) -> Iterator[None]:
        token = self._locale.set(locale)
        try:
            yield
        finally:
            self._locale.reset(token)

    @contextmanager
    def context(self) -> Iterator[I18n]:
        with use_translator(self):
            yield self

    def gettext(self, singular: str, plural: str | None = None, n: int = 1, locale: str | None = None) -> str:
        catalog = self.locales.get(self.current_locale if locale is None else locale)
        if catalog is None:
            return singular if n == 1 or plural is None else plural
        return catalog.gettext(singular) if plural is None else catalog.ngettext(singular, plural, n)


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
