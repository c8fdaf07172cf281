"""An alert's words: its three lines in a language, plain text (the bot's message is made of them,
and the Mini App API's and /ws's `text` is them). The numbers are formatted the same in every
language by `core.alerts`; only the words are translated."""

from __future__ import annotations

from collections.abc import Callable

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


def alert_text(alert: Alert, *, i18n: Translator, locale: str) -> str:
    """The alert as plain text in `locale` (the Mini App API's and /ws's `text`)."""
    return "\n".join(alert_lines(alert, lambda msgid: i18n.gettext(msgid, locale=locale)))


def chart_url(webapp_url: str, symbol: str) -> str:
    return f"{webapp_url.rstrip('/')}/chart/{symbol}"
