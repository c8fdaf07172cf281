"""`/settings`: an inline keyboard edited in place; time zone and custom quiet hours are typed
(aiogram FSM in Redis). Every change re-checks the tier server-side: callback data can be forged.

The "Settings" button under an alert (`settings:open`) sends a new settings message rather than
editing the alert.
"""

from __future__ import annotations

import logging

import asyncpg
from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards.settings import (
    multiple_keyboard,
    quiet_keyboard,
    settings_keyboard,
    settings_text,
    types_keyboard,
    volume_keyboard,
)
from bot.models import BotUser
from core.alerts import AlertType
from core.presets import multiple_presets, volume_presets
from core.settings import Settings
from core.texts import html_text, tier_name
from core.tiers import Tier, limits
from core.timezones import display_timezone, format_quiet_hours, parse_quiet_hours, parse_timezone
from db import user_settings as settings_db

log = logging.getLogger(__name__)


class SettingsInput(StatesGroup):
    timezone = State()
    quiet_hours = State()


def build_router(settings: Settings) -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == "private")
    default_multiple = settings.spike_multiple
    default_volume = settings.spike_min_quote_volume

    async def screen(pool: asyncpg.Pool, user: BotUser) -> tuple[str, InlineKeyboardMarkup]:
        prefs = await settings_db.get(pool, user.id)
        return (
            settings_text(prefs, user.tier, default_multiple, default_volume),
            settings_keyboard(prefs, user.tier, default_multiple),
        )

    async def show(callback: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup) -> None:
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
        callback: CallbackQuery, pool: asyncpg.Pool, user: BotUser, note: str | None = None
    ) -> None:
        text, keyboard = await screen(pool, user)
        await show(callback, text, keyboard)
        await callback.answer(note)

    def custom_allowed(user: BotUser) -> bool:
        return limits(user.tier).custom_thresholds

    @router.message(Command("settings"))
    async def open_settings(message: Message, user: BotUser, pool: asyncpg.Pool, state: FSMContext) -> None:
        await state.clear()
        text, keyboard = await screen(pool, user)
        await message.answer(text, reply_markup=keyboard)

    @router.callback_query(F.data == "settings:open")
    async def open_from_alert(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool) -> None:
        text, keyboard = await screen(pool, user)
        if callback.bot is not None:
            try:
                await callback.bot.send_message(callback.from_user.id, text, reply_markup=keyboard)
            except (TelegramForbiddenError, TelegramBadRequest):
                # Pressed in a group by someone who has no private chat with the bot (yet).
                await callback.answer(_("Open a private chat with me first: /start"), show_alert=True)
                return
        await callback.answer()

    @router.callback_query(F.data == "settings:back")
    async def back(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, state: FSMContext) -> None:
        await state.clear()
        await refresh(callback, pool, user)

    @router.callback_query(F.data.startswith("settings:locked"))
    async def locked(callback: CallbackQuery, user: BotUser) -> None:
        needs = Tier.ELITE if callback.data == "settings:locked:elite" else Tier.PRO
        await callback.answer(
            _("This is part of {tier}. Your plan: {current}. See /status.").format(
                tier=tier_name(needs), current=tier_name(user.tier)
            ),
            show_alert=True,
        )

    @router.callback_query(F.data.startswith("settings:menu:"))
    async def submenu(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool) -> None:
        if not custom_allowed(user):
            await locked(callback, user)
            return
        which = (callback.data or "").removeprefix("settings:menu:")
        prefs = await settings_db.get(pool, user.id)
        if which == "mult":
            text = _("Alert me when this hour's volume is at least this many times the previous hour's:")
            keyboard = multiple_keyboard(default_multiple)
        elif which == "vol":
            text = _("Alert me only when this hour's volume is at least:")
            keyboard = volume_keyboard(default_volume)
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

    @router.callback_query(F.data.startswith("settings:mult:"))
    async def set_multiple(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool) -> None:
        if not custom_allowed(user):
            await locked(callback, user)
            return
        try:
            value = float((callback.data or "").removeprefix("settings:mult:"))
        except ValueError:
            value = 0.0
        if value not in multiple_presets(default_multiple):
            await callback.answer(_("That value is not available."), show_alert=True)
            return
        await settings_db.set_multiple(pool, user.id, None if value == default_multiple else value)
        await refresh(callback, pool, user, _("Saved."))

    @router.callback_query(F.data.startswith("settings:vol:"))
    async def set_volume(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool) -> None:
        if not custom_allowed(user):
            await locked(callback, user)
            return
        try:
            value = float((callback.data or "").removeprefix("settings:vol:"))
        except ValueError:
            value = -1.0
        if value not in volume_presets(default_volume):
            await callback.answer(_("That value is not available."), show_alert=True)
            return
        await settings_db.set_min_volume(pool, user.id, None if value == default_volume else value)
        await refresh(callback, pool, user, _("Saved."))

    @router.callback_query(F.data.startswith("settings:type:"))
    async def toggle_type(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool) -> None:
        raw = (callback.data or "").removeprefix("settings:type:")
        if raw not in {t.value for t in AlertType} or not custom_allowed(user):
            await locked(callback, user)
            return
        alert_type = AlertType(raw)
        if alert_type.is_update and not limits(user.tier).updates:
            await callback.answer(
                _("This is part of {tier}. Your plan: {current}. See /status.").format(
                    tier=tier_name(Tier.ELITE), current=tier_name(user.tier)
                ),
                show_alert=True,
            )
            return
        prefs = await settings_db.get(pool, user.id)
        chosen = set(prefs.alert_types) ^ {alert_type.value}
        if not chosen & ({t.value for t in AlertType if limits(user.tier).updates or not t.is_update}):
            await callback.answer(
                _("Keep at least one alert type. To stop all alerts, use Pause."), show_alert=True
            )
            return
        ordered = [t.value for t in AlertType if t.value in chosen]
        await settings_db.set_alert_types(pool, user.id, ordered)
        prefs = await settings_db.get(pool, user.id)
        await show(callback, _("Which alerts do you want?"), types_keyboard(prefs, user.tier))
        await callback.answer(_("Saved."))

    @router.callback_query(F.data == "settings:wlonly")
    async def toggle_watchlist_only(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool) -> None:
        await settings_db.toggle_watchlist_only(pool, user.id)
        await refresh(callback, pool, user, _("Saved."))

    @router.callback_query(F.data == "settings:pause")
    async def toggle_pause(callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool) -> None:
        prefs = await settings_db.get(pool, user.id)
        await settings_db.set_paused(pool, user.id, not prefs.paused)
        await refresh(callback, pool, user, _("Alerts resumed.") if prefs.paused else _("Alerts paused."))

    @router.callback_query(F.data.startswith("settings:quiet:"))
    async def set_quiet(
        callback: CallbackQuery, user: BotUser, pool: asyncpg.Pool, state: FSMContext
    ) -> None:
        if not custom_allowed(user):
            await locked(callback, user)
            return
        value = (callback.data or "").removeprefix("settings:quiet:")
        if value == "off":
            await settings_db.set_quiet_hours(pool, user.id, None, None)
            await refresh(callback, pool, user, _("Quiet hours are off."))
            return
        if value == "custom":
            await state.set_state(SettingsInput.quiet_hours)
            if callback.bot is not None:
                await callback.bot.send_message(
                    callback.from_user.id, _("Send the quiet hours as HH:MM-HH:MM, e.g. 22:30-06:00.")
                )
            await callback.answer()
            return
        parsed = (
            parse_quiet_hours(f"{value[:2]}:{value[2:4]}-{value[5:7]}:{value[7:9]}")
            if len(value) == 9
            else None
        )
        if parsed is None:
            await callback.answer(_("That value is not available."), show_alert=True)
            return
        await settings_db.set_quiet_hours(pool, user.id, *parsed)
        await refresh(callback, pool, user, _("Saved."))

    @router.callback_query(F.data == "settings:tz")
    async def ask_timezone(callback: CallbackQuery, state: FSMContext) -> None:
        await state.set_state(SettingsInput.timezone)
        if callback.bot is not None:
            await callback.bot.send_message(
                callback.from_user.id,
                _("Send your time zone, e.g. Europe/Istanbul, America/New_York or UTC+3."),
            )
        await callback.answer()

    @router.message(StateFilter(SettingsInput.timezone), F.text, ~F.text.startswith("/"))
    async def typed_timezone(message: Message, user: BotUser, pool: asyncpg.Pool, state: FSMContext) -> None:
        zone = parse_timezone(message.text or "")
        if zone is None:
            await message.answer(
                _(
                    "I don't know the time zone {value}. "
                    "Try a name like Europe/Berlin or an offset like UTC+3."
                ).format(value=f"<code>{html_text(message.text or '', limit=40)}</code>")
            )
            return
        await settings_db.set_timezone(pool, user.id, zone)
        await state.clear()
        await message.answer(_("Time zone set to {zone}.").format(zone=display_timezone(zone)))
        text, keyboard = await screen(pool, user)
        await message.answer(text, reply_markup=keyboard)

    @router.message(StateFilter(SettingsInput.quiet_hours), F.text, ~F.text.startswith("/"))
    async def typed_quiet_hours(
        message: Message, user: BotUser, pool: asyncpg.Pool, state: FSMContext
    ) -> None:
        if not custom_allowed(user):
            await state.clear()
            return
        parsed = parse_quiet_hours(message.text or "")
        if parsed is None:
            await message.answer(_("Please send the hours as HH:MM-HH:MM, e.g. 22:30-06:00."))
            return
        await settings_db.set_quiet_hours(pool, user.id, *parsed)
        await state.clear()
        await message.answer(_("Quiet hours set to {hours}.").format(hours=format_quiet_hours(*parsed)))
        text, keyboard = await screen(pool, user)
        await message.answer(text, reply_markup=keyboard)

    return router
