"""A chat's burst digest as a Telegram message (core.digest has the rule and the words): HTML, the
headline in bold, no buttons (each line is another symbol)."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.utils.i18n import I18n

from core.digest import BurstSpike, digest_lines
from core.texts import html_text


def render_digest(spikes: Sequence[BurstSpike], *, i18n: I18n, locale: str) -> str:
    def t(msgid: str) -> str:
        return i18n.gettext(msgid, locale=locale)

    def ngettext(singular: str, plural: str, n: int) -> str:
        return i18n.gettext(singular, plural, n, locale=locale)

    headline, *rest = (html_text(line) for line in digest_lines(spikes, t, ngettext))
    return "\n".join((f"<b>{headline}</b>", *rest))
