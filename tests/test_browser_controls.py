"""Every control of the Mini App used as a person uses it (tests/miniapp_controls.py is the table):
an elite user inside the Telegram emulation, and the public view. A page showing an interactive
element that no row of the table matches fails `test_every_control_is_in_the_table`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from core.alerts import AlertType
from tests.browser_harness import DARK_THEME, browser_available, seed, utcnow
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.telegram_payments import FakeStars
from tests.miniapp_controls import INTERACTIVE, PAGES, TABLE, rows_for
from tests.miniapp_harness import add_alert, set_tier

if not browser_available():
    pytest.skip("Debian's /usr/bin/chromium is absent and could not be installed", allow_module_level=True)

from playwright.async_api import Page, expect

from tests.miniapp_browser import USER, Console, Site, browser, first_candles, open_site, page  # noqa: F401


@pytest.fixture
async def site(settings, db, redis, names) -> AsyncIterator[Site]:
    """An elite user watching ETH, with a Stars price and the Telegram look-alike for invoices."""
    await seed(db, redis, names, utcnow())
    await set_tier(db, USER, "elite")
    await db.execute("INSERT INTO watchlists (user_id, symbol) VALUES ($1, 'ETHUSDT')", USER)
    async with FakeTelegram() as telegram:
        FakeStars(telegram)
        async with open_site(
            settings,
            db,
            redis,
            bot_token=SecretStr(TOKEN),
            telegram_api_url=telegram.url,
            stars_price_pro=300,
        ) as opened:
            yield opened


READY = {
    "feed": ".alert-card",
    "markets": ".m-row",
    "chart": "#chart[aria-busy='false']",
    "watchlist": "#watch-count:not(:empty), #watch-public:not([hidden])",
    "settings": "#settings-form [name=timezone], #settings-public",
    "plans": ".plans",
    "billing": "#cards-off",
    "unknown": "#unknown-note",
    "record": ".chip-link",
}

UNLISTED = """(args) => {
  const [interactive, selectors] = args;
  const visible = (node) => node.checkVisibility({ checkOpacity: false, checkVisibilityCSS: true });
  return [...document.querySelectorAll(interactive)]
    .filter(visible)
    .filter((node) => !selectors.some((s) => node.matches(s)))
    .map((node) => node.outerHTML.slice(0, 160));
}"""


async def open_page(tab: Page, site: Site, name: str, view: str, *, theme=None) -> None:
    path = PAGES[name]
    url = (
        site.tg(path, theme=theme)
        if view == "tg" and theme
        else site.tg(path)
        if view == "tg"
        else site.base + path
    )
    await tab.goto(url)
    await tab.locator(READY[name]).first.wait_for(state="attached", timeout=20_000)
    await tab.wait_for_load_state("networkidle")


@pytest.mark.parametrize("view", ["tg", "public"])
@pytest.mark.parametrize("name", list(PAGES))
async def test_every_control_is_in_the_table(page, site: Site, name: str, view: str) -> None:
    tab, console = page
    await open_page(tab, site, name, view)
    selectors = [c.selector for c in rows_for(name, view)]
    unlisted = await tab.evaluate(UNLISTED, [INTERACTIVE, selectors])
    assert unlisted == [], f"{name} ({view}) shows controls missing from tests/miniapp_controls.py"
    answered_404 = ["Failed to load resource: the server responded with a status of 404 (Not Found)"]
    assert console.errors == (answered_404 if name == "unknown" else [])  # an unknown symbol is a 404 page


def test_every_row_says_what_it_does_and_what_is_seen() -> None:
    for control in TABLE:
        assert control.page in (*PAGES, "*") and control.action and control.result, control


# The frame.


@pytest.mark.parametrize(
    ("href", "label"),
    [("/markets", "Markets"), ("/watchlist", "Watchlist"), ("/plans", "Plans"), ("/", "Alerts")],
)
async def test_a_tab_opens_its_page_marked_current(page, site: Site, href: str, label: str) -> None:
    tab, console = page
    await open_page(tab, site, "settings", "tg")
    await tab.locator(f".tabbar a[href='{href}']").tap()
    await tab.wait_for_url(f"**{href}" if href != "/" else f"{site.base}/")
    await expect(tab.locator(".tabbar a[aria-current='page']")).to_contain_text(label)
    assert console.errors == []


async def test_the_settings_icon_opens_settings(page, site: Site) -> None:
    tab, _ = page
    await open_page(tab, site, "feed", "tg")
    await tab.locator(".app-header .icon-link").tap()
    await expect(tab.locator("h1")).to_have_text("Settings")


async def test_the_back_link_and_telegrams_back_button_return_to_the_feed(page, site: Site) -> None:
    tab, console = page
    await open_page(tab, site, "feed", "tg")
    await tab.locator(".alert-card").first.tap()
    await first_candles(tab)
    assert console.posted("web_app_setup_back_button", "is_visible: true")
    await tab.evaluate("window.Telegram.WebView.receiveEvent('back_button_pressed')")
    await tab.locator(".alert-card").first.wait_for()
    assert tab.url.split("#")[0] == f"{site.base}/"
    public = await tab.context.new_page()  # a plain browser: the page's own ‹ link
    await open_page(public, site, "settings", "public")
    await public.locator(".back-link").tap()
    await public.locator(".alert-card").first.wait_for()


async def test_the_public_banner_links_to_the_mini_app(page, site: Site) -> None:
    tab, _ = page
    await open_page(tab, site, "chart", "public")
    link = tab.locator(".public-banner a")
    await expect(link).to_be_visible()
    assert await link.get_attribute("href") == "https://t.me/VolSpikeBot/app?startapp=BTCUSDT"


# Feed.


async def test_feed_type_chips_filter_and_say_when_nothing_is_there(page, site: Site, db) -> None:
    tab, console = page
    await open_page(tab, site, "feed", "tg")
    await tab.locator("[data-filter-type='HALF_UPDATE']").tap()
    await expect(tab.locator("[data-filter-type='HALF_UPDATE']")).to_have_attribute("aria-pressed", "true")
    await expect(tab.locator(".alert-card[data-type='SPIKE']")).to_have_count(0)
    await expect(tab.locator(".alert-card[data-type='HALF_UPDATE']")).to_have_count(1)
    await tab.locator("[data-filter-type='FULL_UPDATE']").tap()
    await expect(tab.locator(".alert-card")).to_have_count(0)
    await expect(tab.locator("#empty")).to_be_visible()
    await tab.locator("[data-filter-type='']").tap()
    await expect(tab.locator(".alert-card[data-type='SPIKE']")).not_to_have_count(0)
    assert console.errors == []


async def test_an_early_warning_card_says_it_is_a_projection(page, site: Site, db) -> None:
    tab, console = page
    now = utcnow()
    await db.execute(
        "INSERT INTO alerts (symbol, asset, alert_type, hour_ts, detected_at, current_volume,"
        " previous_volume, volume_ratio, price, funding_rate, projected_volume, published_at)"
        " VALUES ('ETHUSDT', 'ETH', 'EARLY', date_trunc('hour', $1::timestamptz), $1, 6.37e6, 6e6, 1.0617,"
        " 3000, 0.0001, 18.05e6, now())",
        now - timedelta(seconds=5),
    )
    await open_page(tab, site, "feed", "tg")
    await tab.locator("[data-filter-type='EARLY']").tap()
    card = tab.locator(".alert-card[data-type='EARLY']")
    await expect(card).to_have_count(1)
    await expect(card.locator(".badge-early")).to_have_text("Early warning (projection)")
    await expect(card.locator(".alert-projection")).to_contain_text(
        "not a spike yet: on pace for $18.05M (3.01× prev)"
    )
    await expect(tab.locator(".alert-card[data-type='SPIKE']")).to_have_count(0)
    assert console.errors == []


async def test_feed_search_and_card_open_the_chart(page, site: Site) -> None:
    tab, console = page
    await open_page(tab, site, "feed", "tg")
    await tab.locator("#symbol-filter").fill("eth")
    await expect(tab.locator(".alert-card")).to_have_count(1)
    await tab.locator(".alert-card").tap()
    await tab.wait_for_url("**/chart/ETHUSDT**")
    await first_candles(tab)
    assert console.errors == []


# Markets.

SORTED = """(key) => {
  const shown = [...document.querySelectorAll('#market-rows .m-row')].map((row) => row.dataset.symbol);
  return shown;
}"""


@pytest.mark.parametrize("key", ["symbol", "price", "change24h", "hourQuoteVolume", "ratio", "fundingRate"])
async def test_a_column_heading_sorts_the_rows_both_ways(page, site: Site, key: str) -> None:
    tab, console = page
    await tab.set_viewport_size({"width": 600, "height": 900})  # every column shown
    await open_page(tab, site, "markets", "tg")
    data = {
        m["symbol"]: m for m in (await tab.evaluate("fetch('/api/markets').then((r) => r.json())"))["markets"]
    }
    heading = tab.locator(f".m-cols button[data-sort='{key}']")
    directions = []
    for _ in range(2):
        await heading.tap()
        await expect(heading).to_have_attribute("data-order", re.compile("ascending|descending"))
        direction = await heading.get_attribute("data-order")
        directions.append(direction)
        values = [data[s][key] for s in await tab.evaluate(SORTED, key)]
        expected = sorted(values, reverse=direction == "descending")
        assert values == expected, (key, direction)
    assert sorted(directions) == ["ascending", "descending"]  # the second tap turns the order round
    assert console.errors == []


async def test_markets_search_star_and_row(page, site: Site, db) -> None:
    tab, console = page
    await open_page(tab, site, "markets", "tg")
    await tab.locator("#market-search").fill("zzzz")
    await expect(tab.locator("#no-match")).to_be_visible()
    await tab.locator("#market-search").fill("sol")
    await expect(tab.locator(".m-row")).to_have_count(1)
    star = tab.locator(".m-row[data-symbol='SOLUSDT'] .star")
    await star.tap()
    await expect(star).to_have_attribute("aria-pressed", "true")
    assert console.posted("web_app_trigger_haptic_feedback", "selection_change")
    await tab.locator(".m-row[data-symbol='SOLUSDT'] .m-link").tap()
    await tab.wait_for_url("**/chart/SOLUSDT**")
    await open_page(tab, site, "watchlist", "tg")
    await expect(tab.locator(".w-row[data-symbol='SOLUSDT']")).to_be_visible()
    assert console.errors == []


# Chart.


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "4h", "1d"])
async def test_every_timeframe_tab_stays_selected(page, site: Site, interval: str) -> None:
    tab, console = page
    await tab.goto(
        site.tg("/chart/BTCUSDT?interval=1h" if interval != "1h" else "/chart/BTCUSDT?interval=4h")
    )
    await first_candles(tab)
    await tab.locator(f"#timeframes button[data-interval='{interval}']").tap()
    await tab.wait_for_load_state("networkidle")
    await expect(tab.locator("#timeframes button[aria-pressed='true']")).to_have_text(interval)
    assert f"interval={interval}" in tab.url
    assert console.errors == []


async def test_the_chart_star_and_the_attribution_links(page, site: Site, db) -> None:
    tab, console = page
    await open_page(tab, site, "chart", "tg")
    star = tab.locator("#chart-star")
    await expect(star).to_have_attribute("aria-pressed", "false")
    async with tab.expect_response(lambda r: r.url.endswith("/api/watchlist") and r.request.method == "POST"):
        await star.tap()
    await expect(star).to_have_attribute("aria-pressed", "true")
    assert await db.fetchval(
        "SELECT count(*) FROM watchlists WHERE user_id = $1 AND symbol = 'BTCUSDT'", USER
    )
    license_href = await tab.locator(".attribution a[href*='NOTICE']").get_attribute("href")
    answer = await tab.request.get(site.base + license_href)
    assert answer.status == 200 and "Apache" in await answer.text()
    assert await tab.locator(".attribution a[href='https://www.tradingview.com/']").is_visible()
    assert console.errors == []


# Watchlist.


async def test_removing_the_last_watched_symbol_says_the_list_is_empty(page, site: Site) -> None:
    tab, console = page
    await open_page(tab, site, "watchlist", "tg")
    await tab.locator(".w-row[data-symbol='ETHUSDT'] .remove").tap()
    await expect(tab.locator(".w-row")).to_have_count(0)
    await expect(tab.locator("#watch-empty")).to_be_visible()
    await expect(tab.locator("#watch-count")).to_contain_text("0")
    assert console.errors == []


async def test_a_watchlist_row_opens_its_chart_and_add_symbols_opens_markets(page, site: Site) -> None:
    tab, console = page
    await open_page(tab, site, "watchlist", "tg")
    assert console.posted("web_app_setup_main_button", "is_visible: true")
    await tab.evaluate("window.Telegram.WebView.receiveEvent('main_button_pressed')")
    await tab.wait_for_url("**/markets")
    await open_page(tab, site, "watchlist", "tg")
    await tab.locator(".w-row[data-symbol='ETHUSDT'] .w-link").tap()
    await tab.wait_for_url("**/chart/ETHUSDT**")
    assert console.errors == []


# Settings.


async def save(tab: Page) -> None:
    await tab.evaluate("window.Telegram.WebView.receiveEvent('main_button_pressed')")
    await expect(tab.locator("#status[data-kind=ok]")).to_have_text("Saved.")


async def test_every_setting_is_shown_again_after_save_and_reopen(page, site: Site, db) -> None:
    tab, console = page
    await open_page(tab, site, "settings", "tg")
    await expect(tab.locator("#timezone")).to_have_value("UTC")
    await tab.select_option("#spikeMultiple", index=3)
    await tab.select_option("#minQuoteVolume", index=2)
    chosen = [await tab.locator(s).input_value() for s in ("#spikeMultiple", "#minQuoteVolume")]
    await tab.locator("[name=alertTypes][value=HALF_UPDATE]").check()
    await tab.locator("#quietStart").fill("23:00")
    await tab.locator("#quietEnd").fill("07:00")
    await tab.locator("#timezone").fill("Europe/Berlin")
    await tab.select_option("#dailyCap", "10")
    await tab.locator("label[for='watchlistOnly']").tap()
    await tab.locator("label[for='paused']").tap()
    await save(tab)
    assert console.posted("web_app_trigger_haptic_feedback", "notification")
    await tab.reload()
    await expect(tab.locator("#timezone")).to_have_value("Europe/Berlin")
    assert [await tab.locator(s).input_value() for s in ("#spikeMultiple", "#minQuoteVolume")] == chosen
    assert await tab.locator("[name=alertTypes][value=HALF_UPDATE]").is_checked()
    assert await tab.locator("#quietStart").input_value() == "23:00"
    assert await tab.locator("#quietEnd").input_value() == "07:00"
    assert await tab.locator("#dailyCap").input_value() == "10"
    assert await db.fetchval("SELECT daily_cap FROM user_settings") == 10
    assert await tab.locator("#watchlistOnly").is_checked() and await tab.locator("#paused").is_checked()
    assert console.errors == []


async def test_an_unknown_time_zone_is_refused_with_a_message(page, site: Site) -> None:
    tab, console = page
    await open_page(tab, site, "settings", "tg")
    await expect(tab.locator("#timezone")).to_have_value("UTC")
    await tab.locator("#timezone").fill("Mars/Base")
    await tab.evaluate("window.Telegram.WebView.receiveEvent('main_button_pressed')")
    await expect(tab.locator("#status[data-kind=error]")).to_be_visible()
    assert console.posted("web_app_trigger_haptic_feedback", "error")


# Plans.


async def test_the_stars_button_opens_telegrams_invoice_sheet(page, site: Site, db) -> None:
    await set_tier(db, USER, "free")  # Pro is an upgrade for a free user
    tab, console = page
    await open_page(tab, site, "plans", "tg")
    await tab.locator("[data-buy='pro']").tap()
    async with asyncio.timeout(10):
        while not console.posted("web_app_open_invoice"):  # noqa: ASYNC110 - the page's log
            await asyncio.sleep(0.05)
    assert console.errors == []


async def test_the_plan_the_user_already_has_is_not_sold_again(page, site: Site) -> None:
    """The site's user has Elite without an end: the entitlement rule sells upgrades and renewals
    only, so Pro's button is disabled (GET /api/plans: not on sale) with the reason under it, and a
    tap opens no invoice (POST .../invoice would answer 409)."""
    tab, console = page
    await open_page(tab, site, "plans", "tg")
    button = tab.locator("[data-buy='pro']")
    await expect(button).to_be_disabled()
    await button.tap(force=True)
    lower = "Your plan is higher than this one: it would add nothing."
    await expect(tab.locator("#why-pro")).to_have_text(lower)
    await tab.wait_for_load_state("networkidle")
    assert not console.posted("web_app_open_invoice")


# Billing and the unknown symbol.


async def test_billing_with_cards_off_links_to_the_mini_app(page, site: Site) -> None:
    tab, _ = page
    await open_page(tab, site, "billing", "public")
    assert await tab.locator("#cards-off a").get_attribute("href") == "https://t.me/VolSpikeBot/app"


async def test_an_unknown_symbol_suggests_close_ones_and_keeps_the_tab_bar(page, site: Site) -> None:
    tab, console = page
    await open_page(tab, site, "unknown", "tg", theme=DARK_THEME)
    assert await tab.evaluate("document.documentElement.dataset.scheme") == "dark"
    await expect(tab.locator(".tabbar")).to_be_visible()
    await tab.locator("a.suggestion", has_text="BTCUSDT").tap()
    await first_candles(tab)
    await tab.go_back()
    await tab.locator("#to-markets").tap()
    await tab.locator(".m-row").first.wait_for()
    assert [e for e in console.errors if "status of 404" not in e] == []  # the page itself is a 404


async def test_the_chart_loads_older_candles_when_dragged_back(page, site: Site, db) -> None:
    await add_alert(db, "BTCUSDT", utcnow() - timedelta(hours=20), AlertType.SPIKE, ratio=4.4)
    tab, console = page
    await tab.goto(site.tg("/chart/BTCUSDT?interval=1m"))
    await first_candles(tab)
    older: list[str] = []
    tab.on("request", lambda r: older.append(r.url) if "/api/candles" in r.url and "to=" in r.url else None)
    box = await tab.locator("#chart").bounding_box()
    assert box is not None
    for _ in range(30):  # a finger dragging the candles to the right, towards the past
        await tab.mouse.move(box["x"] + 60, box["y"] + box["height"] / 3)
        await tab.mouse.down()
        await tab.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] / 3, steps=6)
        await tab.mouse.up()
        if older:
            break
        await tab.wait_for_timeout(150)
    assert older, "dragging back never asked for older candles"
    assert console.errors == []


async def test_the_track_record_chips_switch_the_window(page, site: Site) -> None:
    tab, console = page
    await open_page(tab, site, "record", "tg")
    await tab.locator(".chip-link[href*='days=90']").tap()
    await tab.wait_for_url("**days=90**")
    await expect(tab.locator(".chip-link[aria-current='true']", has_text="90")).to_be_visible()
    assert console.errors == []
