"""The Mini App's control table: every button, link, select, switch, input and gesture on every
page, with what a person does with it and what they must then see. `tests/test_browser_controls.py`
drives each row in a real Chromium inside the Telegram emulation and fails when a page shows an
interactive element no row's selector matches.

A row's `page` is a key of PAGES ("*" for the frame every page shares: header, tab bar, banner,
Telegram's BackButton); `selector` is CSS matching every instance of the control; `views` says
where it appears (`tg`: inside Telegram as an elite user, `public`: a browser without initData).
"""

from __future__ import annotations

from dataclasses import dataclass

PAGES = {
    "feed": "/",
    "markets": "/markets",
    "chart": "/chart/BTCUSDT",
    "watchlist": "/watchlist",
    "settings": "/settings",
    "plans": "/plans",
    "billing": "/billing",
    "unknown": "/chart/BTX",
    "record": "/record",
}

# What the DOM calls interactive: what a tap, a click or the keyboard can reach.
INTERACTIVE = (
    "a[href], button, select, input, textarea, summary, [role=button], [role=switch], [role=tab], "
    "[tabindex]:not([tabindex='-1']), [contenteditable='true']"
)


@dataclass(frozen=True)
class Control:
    page: str
    selector: str
    kind: str  # link, button, select, switch, checkbox, input, gesture, telegram
    action: str
    result: str
    views: tuple[str, ...] = ("tg", "public")


TABLE: tuple[Control, ...] = (
    # The frame of every page.
    Control(
        "*",
        ".tabbar a",
        "link",
        "tap Alerts, Markets, Watchlist or Plans",
        "that page opens with its tab marked current",
    ),
    Control("*", ".app-header .icon-link[href='/settings']", "link", "tap ⚙︎", "the settings page opens"),
    Control(
        "*",
        ".back-link",
        "link",
        "tap ‹ (outside Telegram; inside, Telegram's BackButton)",
        "the alerts feed opens",
        ("public",),
    ),
    Control(
        "*",
        ".public-banner a",
        "link",
        "tap Open in Telegram",
        "a t.me link to the Mini App (with startapp=<symbol> on a chart)",
        ("public",),
    ),
    Control(
        "*",
        "telegram:BackButton",
        "telegram",
        "press Telegram's BackButton on an inner page",
        "the previous page (the feed) opens",
        ("tg",),
    ),
    # Feed.
    Control(
        "feed",
        "#symbol-filter",
        "input",
        "type part of a symbol (eth, bt, zzz)",
        "only the alerts of matching symbols; 'No alerts for symbols containing …' when none",
    ),
    Control(
        "feed",
        "[data-filter-type]",
        "button",
        "tap All / Volume spike / Half-hour / Hour-close",
        "the chip is selected and only that type's cards show (an empty note when none)",
    ),
    Control("feed", "a[href='/record']", "link", "tap Track record", "the track record page opens"),
    Control(
        "feed",
        "#intro-open",
        "link",
        "tap Open in Telegram under 'what VolSpike is' (the public view's first screen)",
        "the t.me link of the Mini App (tests/test_browser_desktop.py follows it)",
        ("public",),
    ),
    Control("feed", ".alert-card .card-link", "link", "tap an alert card", "that symbol's chart opens"),
    Control(
        "feed",
        ".alert-card .when",
        "button",
        "tap an alert's time ('4 min ago')",
        "the date and time in the user's zone; a second tap: the relative time again",
    ),
    Control(
        "feed",
        "#retry",
        "button",
        "tap Try again after the alerts failed to load",
        "the alerts load and the error goes",
    ),
    # Markets.
    Control(
        "markets",
        "#market-search",
        "input",
        "type part of a symbol (eth, zzzz)",
        "only matching rows; 'No symbols match.' when none",
    ),
    Control(
        "markets",
        ".m-cols button[data-sort]",
        "button",
        "tap a column heading (twice)",
        "rows sorted by it, highest first, then lowest first; the heading shows ▼ / ▲",
    ),
    Control(
        "markets", ".m-row .star", "button", "tap ☆", "★, a haptic tap, the symbol in the watchlist", ("tg",)
    ),
    Control("markets", ".m-link", "link", "tap a row", "that symbol's chart opens"),
    # Chart.
    Control(
        "chart",
        "#timeframes button",
        "button",
        "tap 1m … 1d",
        "that timeframe selected and drawn, kept in the URL",
    ),
    Control("chart", "#chart-star", "button", "tap ☆", "★ and the symbol in the watchlist", ("tg",)),
    Control("chart", "#chart", "gesture", "drag or wheel towards the past", "older candles are loaded"),
    Control(
        "chart",
        "#chart",
        "gesture",
        "tap (or move the crosshair over) a candle; reopen the page",
        "that candle's time, open, high, low, close and volume above the chart; the newest candle's "
        "after a reopen (tests/test_browser_chart.py)",
    ),
    Control(
        "chart",
        "#back-to-now",
        "button",
        "drag into the past, then tap Back to now",
        "shown only while the newest candle is off screen; the chart scrolls back to it and the "
        "button hides (tests/test_browser_chart.py)",
    ),
    Control(
        "chart",
        ".attribution a, #chart a[href*='tradingview']",
        "link",
        "tap TradingView / License",
        "TradingView's site / the license text",
    ),
    # Watchlist.
    Control("watchlist", ".w-link", "link", "tap a row", "that symbol's chart opens", ("tg",)),
    Control(
        "watchlist",
        ".remove",
        "button",
        "tap ✕",
        "the row goes, the count drops; 'Your watchlist is empty…' after the last",
        ("tg",),
    ),
    Control(
        "watchlist",
        "telegram:MainButton",
        "telegram",
        "press Add symbols (Telegram's MainButton)",
        "Markets opens",
        ("tg",),
    ),
    Control(
        "watchlist",
        "#add-symbols",
        "button",
        "Add symbols outside Telegram (web session)",
        "Markets opens",
        (),
    ),
    # Settings (inside Telegram; the public view says to open Telegram).
    Control(
        "settings",
        "#spikeMultiple, #minQuoteVolume",
        "select",
        "choose a value, save, reopen",
        "the chosen value shows again",
        ("tg",),
    ),
    Control(
        "settings",
        "[name=alertTypes]",
        "checkbox",
        "tick Half-hour update, save, reopen",
        "still ticked",
        ("tg",),
    ),
    Control(
        "settings", "#quietStart, #quietEnd", "input", "set 23:00–07:00, save, reopen", "23:00–07:00", ("tg",)
    ),
    Control(
        "settings",
        "#timezone",
        "input",
        "type Europe/Berlin / Mars/Base, save",
        "saved and shown again / an 'unknown time zone' error",
        ("tg",),
    ),
    Control("settings", "#dailyCap", "select", "choose 10, save, reopen", "10 shows again", ("tg",)),
    Control(
        "settings", "#watchlistOnly, #paused", "switch", "tap the switch, save, reopen", "still on", ("tg",)
    ),
    Control(
        "settings",
        "telegram:MainButton",
        "telegram",
        "press Save (Telegram's MainButton)",
        "'Saved.' and a success haptic",
        ("tg",),
    ),
    Control(
        "settings",
        "#save-settings",
        "button",
        "Save outside Telegram (web session)",
        "'Saved.' (tests/test_billing_browser.py)",
        (),
    ),
    # Plans.
    Control(
        "plans",
        "[data-buy]",
        "button",
        "tap Pro for N ⭐",
        "Telegram's invoice sheet opens (openInvoice; tests/test_browser_plans.py pays it); a plan the"
        " entitlement rule does not sell is disabled with the reason under it (test_browser_desktop.py)",
        ("tg",),
    ),
    # Billing (card payments off here; signed-in forms in tests/test_billing_browser.py).
    Control("billing", "#cards-off a", "link", "tap Open in Telegram", "a t.me link to the Mini App"),
    # Track record.
    Control(
        "record",
        ".chip-link",
        "link",
        "tap 30 / 90 days or after 15 min / 1 h / 4 h",
        "the figures of that window, its chip marked current",
    ),
    # Unknown symbol.
    Control(
        "unknown",
        "a.suggestion",
        "link",
        "tap a suggested symbol or All markets",
        "that chart / Markets opens",
    ),
)


def rows_for(page: str, view: str) -> list[Control]:
    return [c for c in TABLE if c.page in (page, "*") and view in c.views and ":" not in c.selector]
