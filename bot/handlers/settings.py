"""`/settings`: an inline keyboard edited in place; time zone and custom quiet hours are typed
(aiogram FSM in Redis, `bot.states.SettingsInput`: each prompt has a Cancel button, and any
command ends it). Every change re-checks the tier server-side: callback data can be forged or
left from an older screen, and each refusal says the real reason.

The "Settings" button under an alert (`settings:open`) sends a new settings message rather than
editing the alert. Handlers are module functions; the service's `Settings`, the pool and the
clock reach them by parameter name (Dispatcher workflow data). The settings screen ends with the
what-if of the thresholds that apply (`db.what_if`, `core.what_if`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards.settings import (
    cap_keyboard,
    multiple_keyboard,
    quiet_keyboard,
    settings_keyboard,
    settings_text,
    thresholds,
    types_keyboard,
    volume_keyboard,
)
from bot.models import BotUser
from bot.states import SettingsInput
from core.alerts import AlertType, AlertTypesProblem, alert_types_problem
from core.clock import Clock
from core.daily_cap import valid_cap
from core.presets import multiple_presets, volume_presets
from core.settings import Settings
from core.texts import html_text, tier_name
from core.tiers import Tier, limits
from core.timezones import display_timezone, format_quiet_hours, parse_quiet_hours, parse_timezone
from core.what_if import what_if_text
from db import user_settings as settings_db
from db import watchlists as watchlists_db
from db.what_if import estimate

log = logging.getLogger(__name__)

CANCEL = "settings:cancel"


async def screen(
    pool: asyncpg.Pool, user: BotUser, settings: Settings, clock: Clock
) -> tuple[str, InlineKeyboardMarkup]:
    prefs = await settings_db.get(pool, user.id)
    empty = prefs.watchlist_only and not await watchlists_db.list_symbols(pool, user.id)
    defaults = (settings.spike_multiple, settings.spike_min_quote_volume)
    multiple, volume = thresholds(prefs, user.tier, *defaults)
    _alerts, days, rate, median, _known = await estimate(pool, clock.now(), multiple, volume, defaults)
    return (
        settings_text(prefs, user.tier, *defaults, watchlist_empty=empty)
        + "\n\n<i>"
        + html_text(what_if_text(rate, days, median, _))
        + "</i>",
        settings_keyboard(prefs, user.tier, settings.spike_multiple),
    )


async def show(callback: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    """Edit the settings message in place (or send a new one when it cannot be edited)."""
    message = callback.message
    if isinstance(message, Message):
        try:
            await message.edit_text(text, reply_markup=keyboard)
            return
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                return
            log.info("settings message not editable, sending a new one", extra={"error": exc.message})
    if callback.bot is not None:
        await callback.bot.send_message(callback.from_user.id, text, reply_markup=keyboard)


async def refresh(
    callback: CallbackQuery,
    pool: asyncpg.Pool,
    user: BotUser,
    settings: Settings,
    clock: Clock,
    note: str | None = None,
    *,
    alert: bool = False,
) -> None:
    text, keyboard = await screen(pool, user, settings, clock)
    await show(callback, text, keyboard)
    await callback.answer(note, show_alert=alert)


def cancel_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=_("Cancel"), callback_data=CANCEL)]]
    )


def needs(tier: Tier, user: BotUser) -> str:
    return _("This is part of {tier}. Your plan: {current}. See /subscribe.").format(
        tier=tier_name(tier), current=tier_name(user.tier)
    )


def has(user: BotUser, tier: Tier) -> bool:
    """Whether the user's plan has what `tier` unlocks in settings."""
    tier_limits = limits(user.tier)
    return tier_limits.updates if tier is Tier.ELITE else tier_limits.custom_thresholds


async def refuse(
    callback: CallbackQuery, pool: asyncpg.Pool, user: BotUser, settings: Settings, clock: Clock, tier: Tier
) -> None:
    """A locked item: why it is locked, or, when the user's plan has it now (a button left from
    before an upgrade), that the button is old, with the screen as it is today."""
    if has(user, tier):
        await refresh(
            callback, pool, user, settings, clock, _("That button has expired. Here are your settings now.")
        )
        return
    await callback.answer(needs(tier, user), show_alert=True)


async def open_settings(
    message: Message, user: BotUser, pool: asyncpg.Pool, settings: Settings, state: FSMContext, clock: Clock
) -> None:
    await state.clear()
    text, keyboard = await screen(pool, user, settings, clock)
    await message.answer(text, reply_markup=keyboard)


async def open_from_alert(
    callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    text, keyboard = await screen(pool, user, settings, clock)
    if callback.bot is not None:
        try:
            await callback.bot.send_message(callback.from_user.id, text, reply_markup=keyboard)
        except (TelegramForbiddenError, TelegramBadRequest):
            # Pressed in a group by someone who has no private chat with the bot (yet).
            await callback.answer(_("Open a private chat with me first: /start"), show_alert=True)
            return
    await callback.answer()


async def back(
    callback: CallbackQuery,
    user: BotUser,
    pool: asyncpg.Pool,
    settings: Settings,
    state: FSMContext,
    clock: Clock,
) -> None:
    await state.clear()
    await refresh(callback, pool, user, settings, clock)


async def cancel(callback: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    if isinstance(callback.message, Message):
        with contextlib.suppress(TelegramBadRequest):  # already edited, or too old to edit
            await callback.message.edit_text(_("Cancelled. Nothing was changed."), reply_markup=None)
    await callback.answer(_("Cancelled."))


async def locked(
    callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    tier = Tier.ELITE if callback.data == "settings:locked:elite" else Tier.PRO
    await refuse(callback, pool, user, settings, clock, tier)


async def submenu(
    callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    if not has(user, Tier.PRO):
        await refuse(callback, pool, user, settings, clock, Tier.PRO)
        return
    which = (callback.data or "").removeprefix("settings:menu:")
    prefs = await settings_db.get(pool, user.id)
    if which == "mult":
        text = _("Alert me when this hour's volume is at least this many times the previous hour's:")
        keyboard = multiple_keyboard(settings.spike_multiple)
    elif which == "vol":
        text = _("Alert me only when this hour's volume is at least:")
        keyboard = volume_keyboard(settings.spike_min_quote_volume)
    elif which == "types":
        text = _("Which alerts do you want?")
        keyboard = types_keyboard(prefs, user.tier)
    elif which == "quiet":
        text = _("No alerts during these hours ({zone}):").format(zone=display_timezone(prefs.timezone))
        keyboard = quiet_keyboard()
    else:
        await callback.answer(_("That button has expired."), show_alert=True)
        return
    await show(callback, text, keyboard)
    await callback.answer()


async def save_preset(
    callback: CallbackQuery,
    user: BotUser,
    pool: asyncpg.Pool,
    settings: Settings,
    clock: Clock,
    *,
    prefix: str,
    default: float,
    presets: list[float],
    save: Callable[[asyncpg.Pool, int, float | None], Awaitable[None]],
) -> None:
    """A preset button (`<prefix><value>`): Pro and up, one of `presets` only; the default is
    stored as None, so the user follows the default when it changes."""
    if not has(user, Tier.PRO):
        await refuse(callback, pool, user, settings, clock, Tier.PRO)
        return
    try:
        value: float | None = float((callback.data or "").removeprefix(prefix))
    except ValueError:
        value = None
    if value is None or value not in presets:
        await callback.answer(_("That value is not available."), show_alert=True)
        return
    await save(pool, user.id, None if value == default else value)
    await refresh(callback, pool, user, settings, clock, _("Saved."))


async def set_multiple(
    callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    default = settings.spike_multiple
    await save_preset(
        callback,
        user,
        pool,
        settings,
        clock,
        prefix="settings:mult:",
        default=default,
        presets=multiple_presets(default),
        save=settings_db.set_multiple,
    )


async def set_volume(
    callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    default = settings.spike_min_quote_volume
    await save_preset(
        callback,
        user,
        pool,
        settings,
        clock,
        prefix="settings:vol:",
        default=default,
        presets=volume_presets(default),
        save=settings_db.set_min_volume,
    )


async def toggle_type(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, settings: Settings) -> None:
    raw = (callback.data or "").removeprefix("settings:type:")
    if raw not in {t.value for t in AlertType}:
        await callback.answer(_("That button has expired."), show_alert=True)
        return
    alert_type = AlertType(raw)
    needed = Tier.ELITE if alert_type.is_update else Tier.PRO
    if not has(user, needed):
        await callback.answer(needs(needed, user), show_alert=True)
        return
    prefs = await settings_db.get(pool, user.id)
    chosen = set(prefs.alert_types) ^ {alert_type.value}
    updates = limits(user.tier).updates
    effective = {t for t in chosen if updates or not AlertType(t).is_update}
    problem = alert_types_problem(effective)
    if problem is AlertTypesProblem.EMPTY:
        await callback.answer(
            _("Keep at least one alert type. To stop all alerts, use Pause."), show_alert=True
        )
        return
    if problem is AlertTypesProblem.UPDATES_WITHOUT_SPIKE:
        await callback.answer(
            _(
                "Updates follow a volume spike: without spike alerts no update comes either. "
                "Switch the updates off first, or use Pause to stop all alerts."
            ),
            show_alert=True,
        )
        return
    ordered = [t.value for t in AlertType if t.value in chosen]
    await settings_db.set_alert_types(pool, user.id, ordered)
    prefs = await settings_db.get(pool, user.id)
    await show(callback, _("Which alerts do you want?"), types_keyboard(prefs, user.tier))
    await callback.answer(_("Saved."))


async def toggle_watchlist_only(
    callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    now_on = await settings_db.toggle_watchlist_only(pool, user.id)
    if now_on and not await watchlists_db.list_symbols(pool, user.id):
        note = _(
            "Watchlist only is on, but your watchlist is empty: no alert reaches you until you add "
            "symbols with /watch BTC ETH."
        )
        await refresh(callback, pool, user, settings, clock, note, alert=True)
        return
    await refresh(callback, pool, user, settings, clock, _("Saved."))


async def toggle_pause(
    callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    prefs = await settings_db.get(pool, user.id)
    await settings_db.set_paused(pool, user.id, not prefs.paused)
    await refresh(
        callback, pool, user, settings, clock, _("Alerts resumed.") if prefs.paused else _("Alerts paused.")
    )


async def set_quiet(
    callback: CallbackQuery,
    user: BotUser,
    pool: asyncpg.Pool,
    settings: Settings,
    state: FSMContext,
    clock: Clock,
) -> None:
    if not has(user, Tier.PRO):
        await refuse(callback, pool, user, settings, clock, Tier.PRO)
        return
    value = (callback.data or "").removeprefix("settings:quiet:")
    if value == "off":
        await settings_db.set_quiet_hours(pool, user.id, None, None)
        await refresh(callback, pool, user, settings, clock, _("Quiet hours are off."))
        return
    if value == "custom":
        await state.set_state(SettingsInput.quiet_hours)
        if callback.bot is not None:
            await callback.bot.send_message(
                callback.from_user.id,
                _("Send the quiet hours as HH:MM-HH:MM, e.g. 22:30-06:00."),
                reply_markup=cancel_keyboard(),
            )
        await callback.answer()
        return
    parsed = (
        parse_quiet_hours(f"{value[:2]}:{value[2:4]}-{value[5:7]}:{value[7:9]}") if len(value) == 9 else None
    )
    if parsed is None:
        await callback.answer(_("That value is not available."), show_alert=True)
        return
    await settings_db.set_quiet_hours(pool, user.id, *parsed)
    await refresh(callback, pool, user, settings, clock, _("Saved."))


async def cap_menu(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool) -> None:
    """The daily cap's choices: every plan has it (it only ever sends fewer messages)."""
    prefs = await settings_db.get(pool, user.id)
    text = _(
        "At most this many spike alerts a day (your time zone). Past it, one summary message "
        "lists the spikes held back:"
    )
    await show(callback, text, cap_keyboard(prefs.daily_cap))
    await callback.answer()


async def set_cap(
    callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    raw = (callback.data or "").removeprefix("settings:cap:")
    cap = None if raw == "off" else int(raw) if raw.isdigit() and len(raw) <= 4 else -1
    if not valid_cap(cap):
        await callback.answer(_("That value is not available."), show_alert=True)
        return
    await settings_db.set_daily_cap(pool, user.id, cap)
    await refresh(callback, pool, user, settings, clock, _("Saved."))


async def ask_timezone(callback: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(SettingsInput.timezone)
    if callback.bot is not None:
        await callback.bot.send_message(
            callback.from_user.id,
            _("Send your city or time zone, e.g. London, Europe/Istanbul or UTC+3."),
            reply_markup=cancel_keyboard(),
        )
    await callback.answer()


async def typed_timezone(
    message: Message, user: BotUser, pool: asyncpg.Pool, settings: Settings, state: FSMContext, clock: Clock
) -> None:
    zone = parse_timezone(message.text or "", user.language)
    if zone is None:
        await message.answer(
            _(
                "I don't know the time zone {value}. "
                "Try your city (e.g. London), a name like Europe/Berlin or an offset like UTC+3."
            ).format(value=f"<code>{html_text(message.text or '', limit=40)}</code>"),
            reply_markup=cancel_keyboard(),
        )
        return
    await settings_db.set_timezone(pool, user.id, zone)
    await state.clear()
    await message.answer(_("Time zone set to {zone}.").format(zone=display_timezone(zone)))
    text, keyboard = await screen(pool, user, settings, clock)
    await message.answer(text, reply_markup=keyboard)


async def typed_quiet_hours(
    message: Message, user: BotUser, pool: asyncpg.Pool, settings: Settings, state: FSMContext, clock: Clock
) -> None:
    if not has(user, Tier.PRO):
        await state.clear()
        await message.answer(needs(Tier.PRO, user))
        return
    parsed = parse_quiet_hours(message.text or "")
    if parsed is None:
        await message.answer(
            _("Please send the hours as HH:MM-HH:MM, e.g. 22:30-06:00."), reply_markup=cancel_keyboard()
        )
        return
    await settings_db.set_quiet_hours(pool, user.id, *parsed)
    await state.clear()
    await message.answer(_("Quiet hours set to {hours}.").format(hours=format_quiet_hours(*parsed)))
    text, keyboard = await screen(pool, user, settings, clock)
    await message.answer(text, reply_markup=keyboard)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")
    typed = (F.text, ~F.text.startswith("/"))
    router.message.register(open_settings, Command("settings"))
    router.message.register(typed_timezone, StateFilter(SettingsInput.timezone), *typed)
    router.message.register(typed_quiet_hours, StateFilter(SettingsInput.quiet_hours), *typed)
    callbacks = router.callback_query
    callbacks.register(open_from_alert, F.data == "settings:open")
    callbacks.register(back, F.data == "settings:back")
    callbacks.register(cancel, F.data == CANCEL)
    callbacks.register(locked, F.data.startswith("settings:locked"))
    callbacks.register(cap_menu, F.data == "settings:menu:cap")
    callbacks.register(submenu, F.data.startswith("settings:menu:"))
    callbacks.register(set_multiple, F.data.startswith("settings:mult:"))
    callbacks.register(set_volume, F.data.startswith("settings:vol:"))
    callbacks.register(toggle_type, F.data.startswith("settings:type:"))
    callbacks.register(toggle_watchlist_only, F.data == "settings:wlonly")
    callbacks.register(toggle_pause, F.data == "settings:pause")
    callbacks.register(set_quiet, F.data.startswith("settings:quiet:"))
    callbacks.register(set_cap, F.data.startswith("settings:cap:"))
    callbacks.register(ask_timezone, F.data == "settings:tz")
    return router
