"""An alert as a Telegram message: localized text (HTML) and its inline keyboard.

Pure: an `Alert`, a locale and where it goes in, text and buttons out. The numbers are
formatted the same in every language by `volspike.alerts`; only the words are translated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo
from aiogram.utils.i18n import I18n

from bot.symbols import symbol_callback
from bot.texts import html_text
from volspike.alerts import (
    Alert,
    AlertType,
    format_funding,
    format_price,
    format_ratio,
    format_usd,
    simulated_prefix,
)
from volspike.tiers import Tier, limits

MUTE_PREFIX = "mute:"
SETTINGS_OPEN = "settings:open"


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
) -> RenderedAlert:
    """The alert for one recipient: `private` chats get a Mini App button, others a URL button."""

    def t(msgid: str) -> str:
        return i18n.gettext(msgid, locale=locale)

    headline, price, funding = (html_text(line) for line in alert_lines(alert, t))
    lines = [f"<b>{headline}</b>", price, funding]
    delay = limits(tier).alert_delay
    if delay:
        minutes = round(delay.total_seconds() / 60)
        # /status means nothing in a group or channel: their members have plans of their own.
        late = (
            t("This alert is {minutes} minutes late. /status")
            if private
            else t("This alert is {minutes} minutes late.")
        ).format(minutes=minutes)
        lines.append("")
        lines.append(f"<i>{late}</i>")
    return RenderedAlert("\n".join(lines), _keyboard(alert, t, private=private, webapp_url=webapp_url))


def alert_lines(alert: Alert, t: Callable[[str], str]) -> tuple[str, str, str]:
    """The alert's three lines in `t`'s language, plain text: the headline (update prefix and
    simulated marker included), the price and the funding. The bot's message and the Mini App
    API's `text` are both made of these."""
    headline = t("{asset} hourly volume {volume} ({ratio} prev) — VOLUME SPIKE!").format(
        asset=alert.asset, volume=format_usd(alert.current_volume), ratio=format_ratio(alert.ratio)
    )
    if alert.alert_type is AlertType.HALF_UPDATE:
        headline = t("HALF-UPDATE: {headline}").format(headline=headline)
    elif alert.alert_type is AlertType.FULL_UPDATE:
        headline = t("UPDATE: {headline}").format(headline=headline)
    funding = format_funding(alert.funding_rate) if alert.funding_rate is not None else t("n/a")
    return (
        simulated_prefix(alert.simulated) + headline,
        t("Price: {price}").format(price=format_price(alert.price)),
        t("Funding: {funding}").format(funding=funding),
    )


def alert_text(alert: Alert, *, i18n: I18n, locale: str) -> str:
    """The alert as plain text in `locale` (the Mini App API's and /ws's `text`)."""
    return "\n".join(alert_lines(alert, lambda msgid: i18n.gettext(msgid, locale=locale)))


def chart_url(webapp_url: str, symbol: str) -> str:
    return f"{webapp_url.rstrip('/')}/chart/{symbol}"


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
    if private:
        # Mute and Settings act on the person who taps them: only meaningful in their own chat.
        row = [InlineKeyboardButton(text=t("Settings"), callback_data=SETTINGS_OPEN)]
        mute = symbol_callback(MUTE_PREFIX, alert.symbol)
        if mute is not None:  # a symbol too long for callback data gets no Mute button
            label = t("Mute {asset} 24 h").format(asset=alert.asset)
            row.insert(0, InlineKeyboardButton(text=label, callback_data=mute))
        rows.append(row)
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
