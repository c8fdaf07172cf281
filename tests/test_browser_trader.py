"""What a trader did on a phone inside Telegram (2026-12-06) and what they must see: a tap on a
timeframe keeps it, saved thresholds show again when the settings are reopened, the feed's search
filters on part of a symbol in any case, a listed symbol with non-ASCII characters opens its
chart, an elite user's chart shows the alerts the elite feed shows, and /billing with card
payments off is a page of the app. Each test failed before its fix."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db.live_state import LiveState
from tests.browser_harness import browser_available, seed_candles, utcnow
from tests.miniapp_harness import add_alert, add_symbols, set_tier

if not browser_available():
    pytest.skip("Debian's /usr/bin/chromium is absent and could not be installed", allow_module_level=True)

from playwright.async_api import Page, expect

from tests.miniapp_browser import USER, Site, browser, first_candles, page, screenshot, site  # noqa: F401

NON_ASCII = "我踏马来了USDT"  # listed on Binance USDⓈ-M (exchangeInfo), so in our universe


async def chosen(tab: Page, select: str) -> str:
    """The text a select shows."""
    return await tab.locator(select).evaluate(
        "(s) => (s.selectedOptions[0] || {textContent: ''}).textContent.trim()"
    )


async def test_a_tapped_timeframe_stays_selected_and_loaded(page, site: Site) -> None:
    tab, console = page
    await tab.goto(site.tg("/chart/BTCUSDT"))
    await first_candles(tab)
    async with tab.expect_response(lambda r: "interval=5m" in r.url and "/api/candles" in r.url):
        await tab.locator("#timeframes button[data-interval='5m']").tap()
    await tab.wait_for_load_state("networkidle")
    await tab.wait_for_timeout(300)  # a second listener's load would land now
    pressed = tab.locator("#timeframes button[aria-pressed='true']")
    await expect(pressed).to_have_count(1)
    await expect(pressed).to_have_text("5m")
    assert "interval=5m" in tab.url
    assert console.errors == []
    await tab.reload()  # the URL keeps the timeframe
    await first_candles(tab)
    await expect(tab.locator("#timeframes button[aria-pressed='true']")).to_have_text("5m")


async def test_saved_thresholds_show_when_settings_are_reopened_and_survive_the_next_save(
    page, site: Site, db
) -> None:
    tab, console = page
    await tab.goto(site.tg("/settings"))
    await expect(tab.locator("#timezone")).to_have_value("UTC")
    multiple = tab.locator("#spikeMultiple option", has_text="5×")
    await tab.select_option("#spikeMultiple", await multiple.get_attribute("value"))
    await tab.select_option("#minQuoteVolume", index=2)
    volume_label = await chosen(tab, "#minQuoteVolume")
    await tab.evaluate("window.Telegram.WebView.receiveEvent('main_button_pressed')")
    await expect(tab.locator("#status[data-kind=ok]")).to_be_visible()
    assert await chosen(tab, "#spikeMultiple") == "5×"
    assert await chosen(tab, "#minQuoteVolume") == volume_label

    await tab.reload()  # the user closes and reopens the page
    await expect(tab.locator("#timezone")).to_have_value("UTC")
    assert await chosen(tab, "#spikeMultiple") == "5×"
    assert await chosen(tab, "#minQuoteVolume") == volume_label

    await tab.locator("label[for='paused']").click()  # an unrelated switch, saved
    await tab.evaluate("window.Telegram.WebView.receiveEvent('main_button_pressed')")
    await expect(tab.locator("#status[data-kind=ok]")).to_be_visible()
    row = await db.fetchrow(
        "SELECT paused, spike_multiple, min_quote_volume FROM user_settings WHERE user_id = $1", USER
    )
    assert row["paused"] is True and row["spike_multiple"] == 5.0 and row["min_quote_volume"] is not None
    assert console.errors == []


@pytest.mark.parametrize(
    ("typed", "symbols"),
    [
        ("ETH", {"ETHUSDT"}),
        ("eth", {"ETHUSDT"}),
        ("bt", {"BTCUSDT"}),
        ("pepe", {"1000PEPEUSDT"}),
    ],
)
async def test_the_feed_search_filters_on_part_of_a_symbol(page, site: Site, db, typed, symbols) -> None:
    await add_symbols(db, ["1000PEPEUSDT"])
    await add_alert(db, "1000PEPEUSDT", utcnow() - timedelta(minutes=20), ratio=6.2)
    tab, console = page
    await tab.goto(site.tg("/"))
    cards = tab.locator(".alert-card")
    await cards.first.wait_for()
    assert await cards.count() == 4
    await tab.locator("#symbol-filter").type(typed)
    await expect(cards).not_to_have_count(4)
    links = [await card.locator(".card-link").get_attribute("href") for card in await cards.all()]
    shown = {link.removeprefix("/chart/") for link in links}
    assert shown == symbols
    assert await tab.locator("#status").is_hidden()
    await tab.locator("#symbol-filter").fill("")  # cleared: every alert again
    await expect(cards).to_have_count(4)
    assert console.errors == []


async def test_a_search_that_matches_nothing_says_so(page, site: Site) -> None:
    tab, console = page
    await tab.goto(site.tg("/"))
    await tab.locator(".alert-card").first.wait_for()
    await tab.locator("#symbol-filter").fill("zzz")
    await expect(tab.locator(".alert-card")).to_have_count(0)
    await expect(tab.locator("#empty")).to_contain_text("zzz")
    assert await tab.locator("#status").is_hidden()
    assert console.errors == []


async def test_a_listed_symbol_with_non_ascii_characters_opens_its_chart_from_markets(
    page, site: Site, db, redis, names
) -> None:
    await add_symbols(db, [NON_ASCII])
    await seed_candles(db, NON_ASCII, utcnow().replace(second=0, microsecond=0), 120, 0.02)
    live = LiveState(redis, names)  # as ingest leaves it: the symbol is on Markets
    live.set_price(NON_ASCII, 0.02, int(utcnow().timestamp() * 1000))
    live.set_24h(NON_ASCII, 12.5, 4e7)
    await live.flush(force=True)
    tab, console = page
    await tab.goto(site.tg("/markets"))
    await tab.locator("#market-search").fill("我踏")
    row = tab.locator(f".m-row[data-symbol='{NON_ASCII}'] .m-link")
    await row.tap()
    await tab.wait_for_url("**/chart/**")
    await first_candles(tab)
    await expect(tab.locator("h1")).to_contain_text("我踏马来了")
    await expect(tab.locator("#last-price")).to_contain_text("$0.0")
    assert console.errors == []


async def sol_chart_with_two_alerts(db) -> None:
    """SOL's candles; its spike 3 minutes ago (seeded: inside the free delay) and one 2 hours ago."""
    await seed_candles(db, "SOLUSDT", utcnow().replace(second=0, microsecond=0), 4 * 60, 180.0)
    await add_alert(db, "SOLUSDT", utcnow() - timedelta(hours=2), ratio=5.5)


async def test_an_elite_chart_shows_the_alert_the_elite_feed_shows(page, site: Site, db) -> None:
    await set_tier(db, USER, "elite")
    await sol_chart_with_two_alerts(db)
    tab, console = page
    await tab.goto(site.tg("/"))
    await expect(tab.locator(".alert-card .card-link").first).to_have_attribute("href", "/chart/SOLUSDT")
    await tab.goto(site.tg("/chart/SOLUSDT?interval=1m"))
    await first_candles(tab)
    await expect(tab.locator("#last-alert")).to_contain_text("3.10×")
    await screenshot(tab, "chart-elite-fresh-alert")
    assert console.errors == []


async def test_the_public_chart_shows_only_alerts_past_the_free_delay(page, site: Site, db) -> None:
    await sol_chart_with_two_alerts(db)
    tab, console = page
    await tab.goto(f"{site.base}/chart/SOLUSDT?interval=1m")
    await first_candles(tab)
    await expect(tab.locator("#last-alert")).to_contain_text("5.50×")
    assert console.errors == []


async def test_billing_with_card_payments_off_is_a_themed_page(page, site: Site) -> None:
    tab, console = page
    response = await tab.goto(f"{site.base}/billing")
    assert response is not None and response.headers["content-type"].startswith("text/html")
    await expect(tab.locator("#cards-off")).to_be_visible()
    text = await tab.locator("body").inner_text()
    assert "STRIPE" not in text and "{" not in text
    await expect(tab.locator(".tabbar a[href='/plans']")).to_be_visible()
    background = await tab.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgba(0, 0, 0, 0)"  # the app's stylesheet, not a bare document
    await screenshot(tab, "billing-cards-off")
    assert console.errors == []
