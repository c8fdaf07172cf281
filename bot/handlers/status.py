"""`/status`: the user's plan, its expiry, and what is switched on."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import asyncpg
from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.models import BotUser
from core.alerts import format_usd
from core.presets import format_multiple
from core.settings import Settings
from core.texts import alert_type_name, on_off, tier_name
from core.tiers import limits, tier_alert_types
from core.timezones import display_timezone, format_quiet_hours
from db import user_settings as settings_db
from db import watchlists as watchlists_db


async def status(message: Message, user: BotUser, pool: asyncpg.Pool, settings: Settings) -> None:
    prefs = await settings_db.get(pool, user.id)
    watched = await watchlists_db.list_symbols(pool, user.id)
    tier = limits(user.tier)
    custom = tier.custom_thresholds
    multiple = (prefs.spike_multiple if custom else None) or settings.spike_multiple
    volume = prefs.min_quote_volume if custom and prefs.min_quote_volume is not None else None
    if volume is None:
        volume = settings.spike_min_quote_volume
    types = [t for t in tier_alert_types(user.tier) if t.value in prefs.alert_types or not custom]
    lines = ["<b>" + _("Your plan: {tier}").format(tier=tier_name(user.tier)) + "</b>"]
    if user.tier_expires_at is not None:
        local = user.tier_expires_at.astimezone(ZoneInfo(prefs.timezone))
        lines.append(
            _("Valid until {date}").format(date=f"{local:%Y-%m-%d %H:%M} {display_timezone(prefs.timezone)}")
        )
    if tier.alert_delay:
        minutes = int(tier.alert_delay.total_seconds() // 60)
        lines.append(
            ngettext(
                "Alerts arrive {minutes} minute after detection.",
                "Alerts arrive {minutes} minutes after detection.",
                minutes,
            ).format(minutes=minutes)
        )
    else:
        lines.append(_("Alerts arrive in real time."))
    lines += [
        "",
        _("Alerts: {value}").format(value=_("paused") if prefs.paused else _("on")),
        _("Spike multiple: {value}").format(value=format_multiple(multiple)),
        _("Minimum hourly volume: {value}").format(value=format_usd(volume)),
        _("Alert types: {value}").format(value=", ".join(alert_type_name(t) for t in types)),
        _("Watchlist only: {value}").format(value=on_off(prefs.watchlist_only)),
    ]
    size = tier.watchlist_size
    if size is None:
        lines.append(
            ngettext("Watchlist: {count} symbol", "Watchlist: {count} symbols", len(watched)).format(
                count=len(watched)
            )
        )
    else:
        lines.append(
            ngettext(
                "Watchlist: {count} of {size} symbol", "Watchlist: {count} of {size} symbols", size
            ).format(count=len(watched), size=size)
        )
    quiet = format_quiet_hours(prefs.quiet_start, prefs.quiet_end) if custom else None
    lines.append(_("Quiet hours: {value}").format(value=quiet or _("off")))
    lines.append(_("Time zone: {value}").format(value=display_timezone(prefs.timezone)))
    if prefs.paused:
        lines += ["", _("Resume alerts in /settings.")]
    await message.answer("\n".join(lines))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")
    router.message.register(status, Command("status"))
    return router
