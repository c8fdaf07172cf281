"""The bot's translations: aiogram's I18n (what its I18nMiddleware takes) over the same catalogs
as `core.i18n`. Its context also sets core's, so the texts in core (`core.i18n.gettext`) translate
inside handlers in the user's language."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager

from aiogram.utils.i18n import I18n as AiogramI18n

from core.i18n import DEFAULT_LOCALE, DOMAIN, LOCALES_DIR, use_translator


class I18n(AiogramI18n):
    @contextmanager
    def context(self) -> Generator[AiogramI18n, None, None]:
        # Set on aiogram's class itself: its mixin keeps one context variable per class, and
        # aiogram's `gettext` reads the base class's.
        token = AiogramI18n.set_current(self)
        try:
            with use_translator(self):
                yield self
        finally:
            AiogramI18n.reset_current(token)


def create_i18n() -> I18n:
    return I18n(path=LOCALES_DIR, default_locale=DEFAULT_LOCALE, domain=DOMAIN)
