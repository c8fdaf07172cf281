"""`/alerts`: the latest alerts the user's tier may see (10 / 50 / 100), one compact line each,
with what the price did after a SPIKE at the longest horizon computed so far."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.models import BotUser
from core.alerts import AlertType, format_price, format_ratio, format_usd, simulated_prefix
from core.clock import Clock
from core.number_format import format_change
from core.texts import chunks, html_text
from core.tiers import feed_window, limits
from core.timezones import display_timezone
from db import alert_history
from db import user_settings as settings_db

_MARK = {AlertType.SPIKE: "🚀", AlertType.HALF_UPDATE: "◐", AlertType.FULL_UPDATE: "●", AlertType.EARLY: "⏳"}


_CHANGE_COLUMN = {15: "change_15m", 60: "change_1h", 240: "change_4h"}


def horizon_name(minutes: int) -> str:
    return {15: _("15 min"), 60: _("1 h"), 240: _("4 h")}[minutes]


def outcome_text(row: asyncpg.Record) -> str:
    """` · +3.10% after 1 h` (the longest horizon computed), or nothing before +15 min."""
    minutes = row["horizon_minutes"]
    if minutes is None:
        return ""
    change = row[_CHANGE_COLUMN[minutes]]
    if change is None:
        return " · " + _("after {horizon}: no price data").format(horizon=horizon_name(minutes))
    return f" · {format_change(change)} " + _("after {horizon}").format(horizon=horizon_name(minutes))


def projection_text(row: asyncpg.Record) -> str:
    """An early warning's projection, said as one: " · on pace for $18.05M (3.01×)"."""
    projected = row["projected_volume"]
    if projected is None or not row["previous_volume"]:
        return ""
    return " · " + _("on pace for {volume} ({ratio})").format(
        volume=format_usd(projected), ratio=format_ratio(projected / row["previous_volume"])
    )


def alert_line(row: asyncpg.Record, zone: ZoneInfo) -> str:
    local: datetime = row["detected_at"].astimezone(zone)
    return (
        f"{simulated_prefix(row['simulated'])}{_MARK[AlertType(row['alert_type'])]} "
        f"<code>{local:%m-%d %H:%M}</code> <b>{html_text(row['asset'])}</b> "
        f"{format_usd(row['current_volume'])} · {format_ratio(row['volume_ratio'])}{projection_text(row)} · "
        f"{format_price(row['price'])}{outcome_text(row)}"
    )


async def recent_alerts(message: Message, user: BotUser, pool: asyncpg.Pool, clock: Clock) -> None:
    tier = limits(user.tier)
    window = feed_window(user.tier, clock.now())  # the same window as the Mini App's feed
    rows = await alert_history.recent(
        pool, visible_until=window.visible_until, limit=window.limit, types=list(window.types)
    )
    if not rows:
        await message.answer(_("No alerts yet. They appear here as soon as a volume spike happens."))
        return
    prefs = await settings_db.get(pool, user.id)
    zone = ZoneInfo(prefs.timezone)
    header = ngettext(
        "Last {count} alert (times in {zone}):", "Last {count} alerts (times in {zone}):", len(rows)
    ).format(count=len(rows), zone=display_timezone(prefs.timezone))
    lines = [header, *(alert_line(row, zone) for row in rows)]
    if tier.alert_delay:
        minutes = int(tier.alert_delay.total_seconds() // 60)
        late = ngettext(
            "Your plan shows alerts {minutes} minute late.",
            "Your plan shows alerts {minutes} minutes late.",
            minutes,
        )
        lines.append(late.format(minutes=minutes))
    for text in chunks(lines):
        await message.answer(text)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")
    router.message.register(recent_alerts, Command("alerts"))
    return router
