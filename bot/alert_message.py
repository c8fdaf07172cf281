"""An alert as a Telegram message: localized text (HTML) and its inline keyboard.

Pure: an `Alert`, a locale and where it goes in, text and buttons out. The words are the alert's
lines from `core.alert_message` (shared with the Mini App); here they become HTML and buttons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo
from aiogram.utils.i18n import I18n

from core.alert_context import context_lines
from core.alert_message import SpikeFigures, alert_lines, chart_url
from core.alerts import Alert
from core.symbols import symbol_callback
from core.texts import html_text
from core.tiers import Tier, limits

MUTE_PREFIX = "mute:"
SETTINGS_OPEN = "settings:open"
CHART_PREFIX = "chart:"
_MAX_ALERT_ID = 2**63 - 1  # alerts.id is a bigint: "chart:" and 19 digits stay far under 64 bytes


def chart_callback(alert_id: int) -> str:
    """The Chart button's callback data: the alert id only (the handler reads the rest from the row)."""
    return f"{CHART_PREFIX}{alert_id}"


def alert_from_chart_callback(data: str | None) -> int | None:
    """The alert id of Chart button data; None for anything a button of ours never carries."""
    if data is None or not data.startswith(CHART_PREFIX):
        return None
    digits = data[len(CHART_PREFIX) :]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        return None
    alert_id = int(digits)
    return alert_id if 0 < alert_id <= _MAX_ALERT_ID else None


@dataclass(frozen=True, slots=True)
class RenderedAlert:
    text: str
    keyboard: InlineKeyboardMarkup | None


def render_alert(
    alert: Alert,
    *,
    i18n: I18n,
    locale: str,
    tier: Tier,
    private: bool,
    webapp_url: str | None,
    zone: str = "UTC",
    spike: SpikeFigures | None = None,
) -> RenderedAlert:
    """The alert for one recipient: `private` chats get a Mini App button, others a URL button;
    an update's hours are in `zone`, and it reports the move since `spike` when it is known."""

    def t(msgid: str) -> str:
        return i18n.gettext(msgid, locale=locale)

    def ngettext(singular: str, plural: str, n: int) -> str:
        return i18n.gettext(singular, plural, n, locale=locale)

    headline, *rest = (html_text(line) for line in alert_lines(alert, t, zone=zone, spike=spike))
    lines = [f"<b>{headline}</b>", *rest]
    lines += (html_text(line) for line in context_lines(alert.context, alert.hour, t))
    delay = limits(tier).alert_delay
    if delay:
        minutes = round(delay.total_seconds() / 60)
        # /status means nothing in a group or channel: their members have plans of their own.
        late = (
            ngettext(
                "This alert is {minutes} minute late. /status",
                "This alert is {minutes} minutes late. /status",
                minutes,
            )
            if private
            else ngettext(
                "This alert is {minutes} minute late.", "This alert is {minutes} minutes late.", minutes
            )
        ).format(minutes=minutes)
        lines.append("")
        lines.append(f"<i>{late}</i>")
    return RenderedAlert("\n".join(lines), _keyboard(alert, t, private=private, webapp_url=webapp_url))


def _keyboard(
    alert: Alert, t: Callable[[str], str], *, private: bool, webapp_url: str | None
) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    if webapp_url:
        url = chart_url(webapp_url, alert.symbol)
        chart = (
            InlineKeyboardButton(text=t("Chart"), web_app=WebAppInfo(url=url))
            if private
            else InlineKeyboardButton(text=t("Chart"), url=url)
        )
        rows.append([chart])
    if private and alert.id is not None:
        # The chart image goes to the chat it is asked from: in a group, to everyone, so only here.
        image = InlineKeyboardButton(text=t("🖼 Chart image"), callback_data=chart_callback(alert.id))
        if rows:
            rows[0].append(image)
        else:
            rows.append([image])
    if private:
        # Mute and Settings act on the person who taps them: only meaningful in their own chat.
        row = [InlineKeyboardButton(text=t("Settings"), callback_data=SETTINGS_OPEN)]
        mute = symbol_callback(MUTE_PREFIX, alert.symbol)
        if mute is not None:  # a symbol too long for callback data gets no Mute button
            label = t("Mute {asset} 24 h").format(asset=alert.asset)
            row.insert(0, InlineKeyboardButton(text=label, callback_data=mute))
        rows.append(row)
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
