"""An alert's words: its lines in a language, plain text (the bot's message is made of them, and
the Mini App API's and /ws's `text` is them). The numbers are formatted the same in every
language by `core.alerts`; only the words are translated.

A SPIKE reads `BTC hourly volume $5.00B (3.33× prev) — VOLUME SPIKE!`. An update says what it
is and which hour in the reader's time zone (`UPDATE — hour closed: XRP 14:00–15:00 (UTC+3)`,
`HALF-UPDATE — half-hour: XRP 14:00–14:30 (UTC+3)`), then the volume, then how it moved since
the reader's SPIKE of that hour: volume and ratio then → now and the price move.

An EARLY says plainly it is a projection, not a spike: `EARLY WARNING (projection): BTC on pace
for $5.00B this hour (3.33× prev)`, then what the hour stands at now and that the projection
is from the symbol's usual pace for this hour of the day."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.alert_context import context_lines
from core.alerts import (
    Alert,
    AlertType,
    format_funding,
    format_price,
    format_ratio,
    format_usd,
    simulated_prefix,
)
from core.i18n import Translator
from core.timezones import display_timezone


@dataclass(frozen=True, slots=True)
class SpikeFigures:
    """The reader's SPIKE of the hour an update follows: when it came and its figures then."""

    detected_at: datetime
    volume: float
    ratio: float
    price: float


def alert_lines(
    alert: Alert, t: Callable[[str], str], *, zone: str = "UTC", spike: SpikeFigures | None = None
) -> list[str]:
    """The alert's lines in `t`'s language, plain text: the headline (simulated marker included),
    for an update its volume and its move since `spike`, then the price and the funding. The
    bot's message and the Mini App API's `text` are both made of these."""
    volume = format_usd(alert.current_volume)
    ratio = format_ratio(alert.ratio)
    lines: list[str] = []
    if alert.alert_type is AlertType.EARLY and alert.projected_volume is not None:
        lines.append(
            t(
                "EARLY WARNING (projection): {asset} on pace for {projected} this hour "
                "({projected_ratio} prev)"
            ).format(
                asset=alert.asset,
                projected=format_usd(alert.projected_volume),
                projected_ratio=format_ratio(alert.projected_ratio or 0.0),
            )
        )
        lines.append(t("Not a spike yet: so far {volume} ({ratio} prev)").format(volume=volume, ratio=ratio))
        lines.append(t("Projected from the usual pace of this hour of the day; it may not get there."))
    elif alert.alert_type is AlertType.SPIKE:
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


def alert_text(alert: Alert, *, i18n: Translator, locale: str) -> str:
    """The alert as plain text in `locale` (the Mini App API's and /ws's `text`): its lines and
    its context's."""

    def t(msgid: str) -> str:
        return i18n.gettext(msgid, locale=locale)

    return "\n".join((*alert_lines(alert, t), *context_lines(alert.context, alert.hour, t)))


def chart_url(webapp_url: str, symbol: str) -> str:
    return f"{webapp_url.rstrip('/')}/chart/{symbol}"
