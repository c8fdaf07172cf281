"""The bot's whole surface as a user meets it: every command, every inline button (by callback data
prefix), every typed-input prompt and the payment updates, each with what the user sends and a
piece of what they must then see, in English and Russian.

`tests/test_bot_surface.py` drives each row through the real Dispatcher and the Telegram
look-alike, and fails when a message or callback handler exists that no row reaches, or a
command or callback filter names something no row sends. A new handler therefore comes with its
row here. Payment and admin rows are simple on purpose: their scenarios are tested in depth
elsewhere (tests/test_stars.py, tests/test_admin.py, tests/test_broadcast.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["command", "button", "prompt", "payment", "text"]

GROUP_CHAT = -100_777


@dataclass(frozen=True)
class Use:
    """One thing a user does. `sends` is the message text for commands, prompts and texts, the
    callback data for buttons, or a payment event (`pre_checkout`, `paid`, `refunded`).
    `before` runs first (a prompt's button or command, or a purchase before its refund); `state` names a
    prompt's FSM state; `sees` maps a
    language to a piece of text the user must see (a message, an edit, a button label, a
    callback answer or an invoice)."""

    kind: Kind
    sends: str
    sees: dict[str, str]
    tier: str = "free"
    admin: bool = False
    group: bool = False
    before: tuple[str, ...] = ()
    state: str = ""  # a prompt's FSM state
    reply_to_support: bool = False  # an admin's reply to the last support message forwarded to them
    notes: str = ""


def both(en: str, ru: str) -> dict[str, str]:
    return {"en": en, "ru": ru}


SURFACE: tuple[Use, ...] = (
    # --- commands -------------------------------------------------------------------------
    Use("command", "/start", both("I watch every Binance", "Я слежу за всеми")),
    Use("command", "/start BTCUSDT", both("Here is the BTCUSDT chart.", "Вот график BTCUSDT.")),
    Use("command", "/help", both("/watch BTC ETH — add symbols", "/watch BTC ETH — добавить символы")),
    Use("command", "/alerts", both("No alerts yet.", "Оповещений пока нет.")),
    Use("command", "/watch BTC", both("Added: BTCUSDT", "Добавлено: BTCUSDT")),
    Use("command", "/unwatch BTC", both("Not in your watchlist: BTCUSDT", "Нет в вашем списке: BTCUSDT")),
    Use("command", "/watchlist", both("Your watchlist is empty.", "Ваш список наблюдения пуст.")),
    Use("command", "/settings", both("Spike multiple: 3×", "Множитель всплеска: 3×")),
    Use("command", "/status", both("Your plan: Free", "Ваш тариф: Free")),
    Use("command", "/language", both("Choose your language:", "Выберите язык:")),
    Use("command", "/stop", both("All alerts are paused.", "Все оповещения приостановлены.")),
    Use("command", "/mutes", both("You have no muted symbols.", "У вас нет заглушённых символов.")),
    Use("command", "/subscribe", both("Pro 30 days — 250 ⭐", "Pro 30 дней — 250 ⭐")),
    Use("command", "/subscription", both("Upgrade with /subscribe.", "Улучшите тариф через /subscribe.")),
    Use("command", "/paysupport", both("Payment support", "Поддержка по оплате")),
    Use("command", "/terms", both("<b>Terms</b>", "<b>Условия</b>")),
    Use("command", "/WATCH eth", both("Added: ETHUSDT", "Добавлено: ETHUSDT"), notes="any case"),
    Use("command", "/nope", both("I don't know that command.", "Я не знаю такой команды.")),
    Use("text", "hello", both("I answer to commands.", "Я отвечаю на команды.")),
    # admin commands (ADMIN_IDS only)
    Use("command", "/grant", both("Usage: /grant", "Использование: /grant"), admin=True),
    Use("command", "/revoke", both("Usage: /revoke", "Использование: /revoke"), admin=True),
    Use("command", "/ban", both("Usage: /ban", "Использование: /ban"), admin=True),
    Use("command", "/unban", both("Usage: /unban", "Использование: /unban"), admin=True),
    Use("command", "/stats", both("<b>Stats</b>", "<b>Статистика</b>"), admin=True),
    Use("command", "/health", both("<b>Health</b>", "<b>Состояние</b>"), admin=True),
    Use("command", "/refund", both("Usage: /refund", "Использование: /refund"), admin=True),
    Use("command", "/broadcast", both("Usage: /broadcast", "Использование: /broadcast"), admin=True),
    Use("command", "/connect", both("Usage: /connect", "Использование: /connect"), admin=True),
    Use(
        "command",
        "/connect",
        both("This chat now receives", "Этот чат теперь получает"),
        admin=True,
        group=True,
    ),
    Use("command", "/disconnect", both("Usage: /disconnect", "Использование: /disconnect"), admin=True),
    Use(
        "command",
        "/connect pro ru",
        both("spike alerts in Русский", "всплесках Pro на языке: Русский"),
        admin=True,
        group=True,
        notes="the alerts' language",
    ),
    # --- buttons (callback data) -------------------------------------------------------------
    Use(
        "button",
        "settings:open",
        both("Spike multiple: 3×", "Множитель всплеска: 3×"),
        notes="under an alert",
    ),
    Use("button", "settings:back", both("Spike multiple: 3×", "Множитель всплеска: 3×")),
    Use("button", "settings:cancel", both("Cancelled.", "Отменено.")),
    Use("button", "settings:locked", both("This is part of Pro.", "Это входит в Pro.")),
    Use("button", "settings:locked:elite", both("This is part of Elite.", "Это входит в Elite."), tier="pro"),
    Use(
        "button",
        "settings:menu:mult",
        both("Alert me when this hour's volume", "Оповещать, когда объём"),
        tier="pro",
    ),
    Use("button", "settings:menu:vol", both("Alert me only when", "Оповещать, только если"), tier="pro"),
    Use("button", "settings:menu:types", both("Which alerts do you want?", "Какие оповещения"), tier="pro"),
    Use("button", "settings:menu:quiet", both("No alerts during these hours", "Без оповещений"), tier="pro"),
    Use("button", "settings:mult:5", both("Spike multiple: 5×", "Множитель всплеска: 5×"), tier="pro"),
    Use("button", "settings:vol:10000000", both("$10.00M", "$10.00M"), tier="pro"),
    Use(
        "button",
        "settings:type:SPIKE",
        both("Keep at least one alert type.", "Оставьте хотя бы один"),
        tier="pro",
    ),
    Use("button", "settings:wlonly", both("your watchlist is empty", "список пуст")),
    Use("button", "settings:pause", both("Alerts paused.", "Оповещения приостановлены.")),
    Use(
        "button",
        "settings:quiet:2200-0700",
        both("Quiet hours: 22:00–07:00", "Тихие часы: 22:00–07:00"),
        tier="pro",
    ),
    Use("button", "settings:quiet:off", both("Quiet hours are off.", "Тихие часы выключены."), tier="pro"),
    Use("button", "settings:menu:cap", both("At most this many spike alerts a day", "Не больше стольких")),
    Use("button", "settings:cap:10", both("Daily cap: 10 spikes a day", "Дневной лимит: 10 всплесков")),
    Use(
        "button", "settings:quiet:custom", both("Send the quiet hours as", "Отправьте тихие часы"), tier="pro"
    ),
    Use("button", "settings:tz", both("Send your city or time zone", "Отправьте свой город")),
    Use("button", "lang:ru", both("Язык: русский.", "Язык: русский.")),
    Use("button", "mute:BTCUSDT", both("BTCUSDT muted for 24 hours.", "BTCUSDT: оповещения отключены")),
    Use(
        "button",
        "chart:999999",
        both("That alert no longer exists.", "Этого оповещения больше нет."),
        notes="under an alert; a real alert's chart: tests/test_bot_chart.py",
    ),
    Use("button", "unmute:BTCUSDT", both("That mute has already ended.", "Это заглушение уже закончилось.")),
    Use("button", "pass:pro", both("VolSpike Pro — 30-day pass", "VolSpike Pro — 30 дней")),
    Use("button", "sub:cancel", both("You have no Stars subscription.", "У вас нет подписки Stars.")),
    Use("button", "sub:resume", both("You have no Stars subscription.", "У вас нет подписки Stars.")),
    Use(
        "button", "bc:go:999999", both("already sent or cancelled", "уже отправлена или отменена"), admin=True
    ),
    Use(
        "button", "bc:no:999999", both("already sent or cancelled", "уже отправлена или отменена"), admin=True
    ),
    Use(
        "button",
        "bc:stop:999999",
        both("already sent or cancelled", "уже отправлена или отменена"),
        admin=True,
    ),
    Use("button", "old:button", both("That button has expired.", "Эта кнопка устарела."), notes="forged"),
    Use("button", "support:done", both("We answer here in this chat.", "Мы ответим здесь, в этом чате.")),
    # --- typed-input prompts -----------------------------------------------------------------
    Use(
        "prompt",
        "Europe/Berlin",
        both("Time zone set to Europe/Berlin.", "Часовой пояс: Europe/Berlin."),
        before=("settings:tz",),
        state="SettingsInput:timezone",
    ),
    Use(
        "prompt",
        "22:00-07:00",
        both("Quiet hours set to 22:00–07:00.", "Тихие часы: 22:00–07:00."),
        tier="pro",
        before=("settings:quiet:custom",),
        state="SettingsInput:quiet_hours",
    ),
    Use(
        "prompt",
        "I was charged twice",
        both("Sent to the VolSpike team.", "Отправлено команде VolSpike."),
        before=("/paysupport",),
        state="Support:open",
        notes="forwarded to the admins",
    ),
    Use(
        "text",
        "We refunded one of them.",
        both("Sent to user", "Отправлено пользователю"),
        admin=True,
        reply_to_support=True,
        notes="the admin's reply to the forwarded support message reaches the user",
    ),
    # --- payments (Telegram Stars) -----------------------------------------------------------
    Use("payment", "pre_checkout", both("ok", "ok"), notes="answerPreCheckoutQuery ok"),
    Use("payment", "paid", both("Thank you! You have Pro until", "Спасибо! У вас Pro до")),
    Use(
        "payment",
        "refunded",
        both("Your payment was refunded.", "Ваш платёж возвращён."),
        before=("paid",),
        notes="the admin refunds, Telegram sends refunded_payment",
    ),
)
