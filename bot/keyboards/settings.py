"""The `/settings` screen: its text and inline keyboards. Callback data is `settings:<action>[:<value>]`."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from core.alerts import AlertType, format_usd
from core.daily_cap import DAILY_CAP_PRESETS
from core.presets import QUIET_PRESETS, format_multiple, multiple_presets, volume_presets
from core.texts import alert_type_name, on_off, tier_name
from core.tiers import Tier, limits, tier_alert_types
from core.timezones import display_timezone, format_quiet_hours
from db.user_settings import UserSettings

LOCK = "🔒 "


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _back() -> list[InlineKeyboardButton]:
    return [_button("« " + _("Back"), "settings:back")]


def thresholds(
    prefs: UserSettings, tier: Tier, default_multiple: float, default_volume: float
) -> tuple[float, float]:
    """The multiple and minimum volume that apply now: a tier without custom settings gets the
    defaults, whatever is stored."""
    custom = limits(tier).custom_thresholds
    multiple = (prefs.spike_multiple if custom else None) or default_multiple
    volume = prefs.min_quote_volume if custom and prefs.min_quote_volume is not None else default_volume
    return multiple, volume


def settings_text(
    prefs: UserSettings,
    tier: Tier,
    default_multiple: float,
    default_volume: float,
    *,
    watchlist_empty: bool = False,
) -> str:
    tier_limits = limits(tier)
    custom = tier_limits.custom_thresholds
    multiple, volume = thresholds(prefs, tier, default_multiple, default_volume)
    types = ", ".join(
        alert_type_name(t) for t in tier_alert_types(tier) if t.value in prefs.alert_types or not custom
    )
    quiet = format_quiet_hours(prefs.quiet_start, prefs.quiet_end) if custom else None
    lines = [
        "<b>" + _("Settings") + "</b>",
        _("Spike multiple: {value}").format(value=format_multiple(multiple)),
        _("Minimum hourly volume: {value}").format(value=format_usd(volume)),
        _("Alert types: {value}").format(value=types),
        _("Watchlist only: {value}").format(value=on_off(prefs.watchlist_only)),
        *(
            ["⚠️ " + _("Your watchlist is empty, so no alert reaches you. Add symbols with /watch BTC ETH")]
            if watchlist_empty
            else []
        ),
        _("Quiet hours: {value}").format(value=quiet or _("off")),
        _("Time zone: {value}").format(value=display_timezone(prefs.timezone)),
        _("Alerts: {value}").format(value=_("paused") if prefs.paused else _("on")),
        _("Daily cap: {value}").format(value=cap_value(prefs.daily_cap)),
    ]
    if not custom:
        lines += [
            "",
            LOCK
            + _(
                "{pro} unlocks your own spike multiple, minimum volume, alert types and quiet hours; "
                "{elite} adds half-hour and hour-close updates and real-time delivery."
            ).format(pro=tier_name(Tier.PRO), elite=tier_name(Tier.ELITE)),
            _("Plans and prices: /subscribe"),
        ]
    elif not tier_limits.updates:
        lines += [
            "",
            LOCK + _("{elite} adds half-hour and hour-close updates.").format(elite=tier_name(Tier.ELITE)),
            _("Plans and prices: /subscribe"),
        ]
    return "\n".join(lines)


def settings_keyboard(prefs: UserSettings, tier: Tier, default_multiple: float) -> InlineKeyboardMarkup:
    custom = limits(tier).custom_thresholds
    lock = "" if custom else LOCK
    locked = "settings:locked"
    multiple = prefs.spike_multiple or default_multiple
    rows = [
        [
            _button(
                lock + _("Multiple: {value}").format(value=format_multiple(multiple)),
                "settings:menu:mult" if custom else locked,
            ),
            _button(lock + _("Minimum volume"), "settings:menu:vol" if custom else locked),
        ],
        [_button(lock + _("Alert types"), "settings:menu:types" if custom else locked)],
        [_button(_("Watchlist only: {value}").format(value=on_off(prefs.watchlist_only)), "settings:wlonly")],
        [
            _button(lock + _("Quiet hours"), "settings:menu:quiet" if custom else locked),
            _button(_("Time zone"), "settings:tz"),
        ],
        [_button(_("Resume alerts") if prefs.paused else _("Pause alerts"), "settings:pause")],
        [_button(_("Daily cap: {value}").format(value=cap_value(prefs.daily_cap)), "settings:menu:cap")],
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def cap_value(cap: int | None) -> str:
    if cap is None:
        return _("off")
    return ngettext("{count} spike a day", "{count} spikes a day", cap).format(count=cap)


def cap_keyboard(current: int | None) -> InlineKeyboardMarkup:
    presets = [
        _button(("✅ " if value == current else "") + str(value), f"settings:cap:{value}")
        for value in DAILY_CAP_PRESETS
    ]
    off = _button(("✅ " if current is None else "") + _("No cap"), "settings:cap:off")
    return InlineKeyboardMarkup(inline_keyboard=[presets, [off], _back()])


def multiple_keyboard(default: float) -> InlineKeyboardMarkup:
    presets = [_button(format_multiple(v), f"settings:mult:{v:g}") for v in multiple_presets(default)]
    return InlineKeyboardMarkup(inline_keyboard=[presets, _back()])


def volume_keyboard(default: float) -> InlineKeyboardMarkup:
    presets = [_button(format_usd(v), f"settings:vol:{int(v)}") for v in volume_presets(default)]
    return InlineKeyboardMarkup(inline_keyboard=[presets[:3], presets[3:], _back()])


def types_keyboard(prefs: UserSettings, tier: Tier) -> InlineKeyboardMarkup:
    rows = []
    for alert_type in AlertType:
        if alert_type.is_update and not limits(tier).updates:
            rows.append([_button(LOCK + alert_type_name(alert_type), "settings:locked:elite")])
            continue
        mark = "✅ " if alert_type.value in prefs.alert_types else "▫️ "
        rows.append([_button(mark + alert_type_name(alert_type), f"settings:type:{alert_type.value}")])
    return InlineKeyboardMarkup(inline_keyboard=[*rows, _back()])


def quiet_keyboard() -> InlineKeyboardMarkup:
    presets = [_button(p.replace("-", "–"), f"settings:quiet:{p.replace(':', '')}") for p in QUIET_PRESETS]
    return InlineKeyboardMarkup(
        inline_keyboard=[
            presets,
            [_button(_("Other hours…"), "settings:quiet:custom"), _button(_("Off"), "settings:quiet:off")],
            _back(),
        ]
    )
