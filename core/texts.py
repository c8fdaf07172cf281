"""Small localized texts shared by several handlers (call inside an i18n context)."""

from __future__ import annotations

import html

from core.alerts import AlertType
from core.i18n import gettext as _
from core.tiers import Tier

MAX_MESSAGE = 4096


def html_text(value: object, *, limit: int | None = None) -> str:
    """`value` as text safe inside a Telegram HTML message: the one escaper of the bot.

    Everything that did not come from our own catalogs (what users type, chat titles, names,
    exchange symbols) passes through here before it is put into an HTML message. `limit` cuts
    the raw text first, so an escape sequence is never cut in half."""
    text = str(value)
    if limit is not None:
        text = text[:limit]
    return html.escape(text, quote=False)


def tier_name(tier: Tier) -> str:
    return {Tier.FREE: _("Free"), Tier.PRO: _("Pro"), Tier.ELITE: _("Elite")}[tier]


def alert_type_name(alert_type: AlertType | str) -> str:
    return {
        AlertType.SPIKE: _("Volume spike"),
        AlertType.HALF_UPDATE: _("Half-hour update"),
        AlertType.FULL_UPDATE: _("Hour-close update"),
        AlertType.EARLY: _("Early warning (projection)"),
    }[AlertType(alert_type)]


def on_off(value: bool) -> str:
    return _("on") if value else _("off")


def chunks(lines: list[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Join lines into as few messages as Telegram's length limit allows."""
    out: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit and current:
            out.append(current)
            current = line
        else:
            current = candidate
    if current:
        out.append(current)
    return out
