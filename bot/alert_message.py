"""An alert as a Telegram message: localized text (HTML) and its inline keyboard.

Pure: an `Alert`, a locale and where it goes in, text and buttons out. The numbers are
formatted the same in every language by `volspike.alerts`; only the words are translated.

A SPIKE reads `BTC hourly volume $5.00B (3.33× prev) — VOLUME SPIKE!`. An update says what it
is and which hour in the reader's time zone (`UPDATE — hour closed: XRP 14:00–15:00 (UTC+3)`,
`HALF-UPDATE — half-hour: XRP 14:00–14:30 (UTC+3)`), then the volume, then how it moved since
the reader's SPIKE of that hour: volume and ratio then → now and the price move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo
from aiogram.utils.i18n import I18n

from bot.symbols import symbol_callback
from bot.texts import html_text
from bot.timezones import display_timezone
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
class SpikeFigures:
    """The reader's SPIKE of the hour an update follows: when it came and its figures then."""

    detected_at: datetime
    volume: float
    ratio: float
    price: float


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
    delay = limits(tier).alert_delay
    if delay:
        minutes = round(delay.total_seconds() / 60)
        late = ngettext(
            "This alert is {minutes} minute late. /status",
            "This alert is {minutes} minutes late. /status",
            minutes,
        ).format(minutes=minutes)
        lines.append("")
        lines.append(f"<i>{late}</i>")
    return RenderedAlert("\n".join(lines), _keyboard(alert, t, private=private, webapp_url=webapp_url))


def alert_lines(
    alert: Alert, t: Callable[[str], str], *, zone: str = "UTC", spike: SpikeFigures | None = None
) -> list[str]:
    """The alert's lines in `t`'s language, plain text: the headline (simulated marker included),
    for an update its volume and its move since `spike`, then the price and the funding. The
    bot's message and the Mini App API's `text` are both made of these."""
    volume = format_usd(alert.current_volume)
    ratio = format_ratio(alert.ratio)
    lines: list[str] = []
    if alert.alert_type is AlertType.SPIKE:
        lines.append(
            t("{asset} hourly volume {volume} ({ratio} prev) — VOLUME SPIKE!").format(
                asset=alert.asset, volume=volume, ratio=ratio
            )
        )
    else:
        local = ZoneInfo(zone)
        start = alert.hour.astimezone(local)
        if alert.alert_type is AlertType.FULL_UPDATE:
            span = f"{start:%H:%M}–{(alert.hour + timedelta(hours=1)).astimezone(local):%H:%M}"
            headline = t("UPDATE — hour closed: {asset} {hours} ({zone})")
            figures = t("Hourly volume {volume} ({ratio} prev)")
        else:
            span = f"{start:%H:%M}–{(alert.hour + timedelta(minutes=30)).astimezone(local):%H:%M}"
            headline = t("HALF-UPDATE — half-hour: {asset} {hours} ({zone})")
            figures = t("Volume so far {volume} ({ratio} prev)")
        lines.append(headline.format(asset=alert.asset, hours=span, zone=display_timezone(zone)))
        lines.append(figures.format(volume=volume, ratio=ratio))
        if spike is not None:
            lines.append(
                t(
                    "Since the spike at {time}: {volume_then} → {volume_now}, {ratio_then} → {ratio_now}"
                ).format(
                    time=f"{spike.detected_at.astimezone(local):%H:%M}",
                    volume_then=format_usd(spike.volume),
                    volume_now=volume,
                    ratio_then=format_ratio(spike.ratio),
                    ratio_now=ratio,
                )
            )
            if spike.price > 0:
                move = (alert.price / spike.price - 1) * 100
                lines.append(
                    t("Price since the spike: {move} ({price_then} → {price_now})").format(
                        move=f"{move:+.2f}%",
                        price_then=format_price(spike.price),
                        price_now=format_price(alert.price),
                    )
                )
    funding = format_funding(alert.funding_rate) if alert.funding_rate is not None else t("n/a")
    lines[0] = simulated_prefix(alert.simulated) + lines[0]
    lines.append(t("Price: {price}").format(price=format_price(alert.price)))
    lines.append(t("Funding: {funding}").format(funding=funding))
    return lines


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
