"""The Mini App in a real Chromium (Debian's, driven by Playwright) against the real webapp on
real PostgreSQL and Redis: pages opened as Telegram opens them (signed initData and theme in
the URL fragment), the public view without initData. Screenshots in light and dark theme are
saved under .artifacts/browser/."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta

import orjson
import pytest

from bot.alert_message import render_alert
from bot.i18n import create_i18n
from core.alert_context import AlertContext
from core.alerts import Alert, AlertType
from core.number_format import format_change, format_funding, format_price, format_ratio, format_usd
from core.tiers import Tier
from db import alert_feed
from db.alerts import insert_alert
from db.publisher import AlertPublisher
from ingest.candle_feed import CandleFeed
from ingest.parsers import Kline
from tests.browser_harness import (
    DARK_THEME,
    browser_available,
    utcnow,
)
from tests.miniapp_harness import add_minutes, set_tier
from webapp.ws import LIVE_HUB

if not browser_available():
    pytest.skip("Debian's /usr/bin/chromium is absent and could not be installed", allow_module_level=True)

from playwright.async_api import expect

from tests.miniapp_browser import USER, Site, browser, first_candles, page, screenshot, site  # noqa: F401


async def test_chart_opened_from_telegram_draws_candles_markers_and_the_hour_ratio(page, site: Site) -> None:
    tab, console = page
    await tab.goto(site.tg("/chart/BTCUSDT"))
    await first_candles(tab)
    assert await tab.locator("#chart canvas").count() >= 2  # price and volume panes
    canvas = await tab.locator("#chart canvas").first.bounding_box()
    assert canvas is not None and canvas["width"] > 250 and canvas["height"] > 150
    assert (await tab.locator("#hour-ratio").inner_text()).endswith("×")
    assert (await tab.locator("#last-price").inner_text()).startswith("$")
    assert await tab.evaluate("document.documentElement.classList.contains('in-telegram')")
    assert await tab.locator("#tier-chip").text_content() == "Pro"
    assert await tab.locator(".public-banner").is_hidden()
    assert (
        await tab.locator("a[href='https://www.tradingview.com/']").count() >= 1
    )  # the license's attribution
    await screenshot(tab, "chart-light")
    assert console.errors == []


async def test_chart_follows_telegrams_dark_theme(page, site: Site) -> None:
    tab, console = page
    await tab.goto(site.tg("/chart/BTCUSDT", theme=DARK_THEME))
    await first_candles(tab)
    assert await tab.evaluate("document.documentElement.dataset.scheme") == "dark"
    background = await tab.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 15, 15)"  # the theme's secondary_bg_color
    await screenshot(tab, "chart-dark")
    await tab.goto(site.tg("/", theme=DARK_THEME))
    await tab.locator(".alert-card").first.wait_for()
    await screenshot(tab, "feed-dark")
    assert console.errors == []


async def test_feed_lists_the_users_alerts_and_each_opens_its_chart(page, site: Site) -> None:
    tab, console = page
    await tab.goto(site.tg("/"))
    cards = tab.locator(".alert-card")
    await cards.first.wait_for()
    # pro: 5 minutes late, spikes only (the SOL spike 3 minutes ago and the half-update are not shown)
    symbols = [await card.locator(".card-link").get_attribute("href") for card in await cards.all()]
    assert symbols == ["/chart/ETHUSDT", "/chart/BTCUSDT", "/chart/BTCUSDT"]
    assert "5" in await tab.locator("#delay-note").inner_text()
    assert console.posted("web_app_setup_back_button", "is_visible: false")  # a top-level page
    await screenshot(tab, "feed-light")
    await cards.first.click()
    await tab.wait_for_url("**/chart/ETHUSDT**")
    await first_candles(tab)
    assert console.errors == []


async def test_a_star_in_markets_is_in_the_watchlist_after_a_reload(page, site: Site, db) -> None:
    tab, console = page
    await tab.goto(site.tg("/markets"))
    star = tab.locator(".m-row[data-symbol='ETHUSDT'] .star")
    await star.wait_for()
    assert await star.get_attribute("aria-pressed") == "false"
    async with tab.expect_response(
        lambda r: r.url.endswith("/api/watchlist") and r.request.method == "POST"
    ) as added:
        await star.click()
    assert (await added.value).status == 200
    assert await star.get_attribute("aria-pressed") == "true"
    assert console.posted("web_app_trigger_haptic_feedback", "selection_change")
    await screenshot(tab, "markets-light")
    await tab.goto(site.tg("/watchlist"))
    await tab.reload()
    row = tab.locator(".w-row[data-symbol='ETHUSDT']")
    await row.wait_for()
    assert await tab.locator(".w-row").count() == 1
    assert "1" in await tab.locator("#watch-count").inner_text()
    await tab.goto(site.tg("/markets"))
    await star.wait_for()
    assert await star.get_attribute("aria-pressed") == "true"
    assert (
        await db.fetchval("SELECT count(*) FROM watchlists WHERE user_id = $1 AND symbol = 'ETHUSDT'", USER)
        == 1
    )
    assert console.errors == []


CARD_FIGURES = """() => [...document.querySelectorAll('.alert-card')].map((card) => ({
  id: Number(card.dataset.id),
  figures: [...card.querySelectorAll('.figure:not(.prev)')].map((figure) => figure.lastChild.textContent),
}))"""
ROW_FIGURES = """() => [...document.querySelectorAll('#market-rows .m-row')].map((row) => ({
  symbol: row.dataset.symbol,
  figures: [...row.querySelectorAll('.c-num')].map((cell) => cell.textContent),
}))"""


async def test_the_pages_write_every_figure_as_the_bot_does(page, site: Site, db, redis, names) -> None:
    tab, console = page
    entry = orjson.loads(await redis.hget(names.market, "SOLUSDT"))
    await redis.hset(
        names.market, "SOLUSDT", orjson.dumps({**entry, "price": 0.00001234})
    )  # a PEPE-sized price
    await tab.goto(site.tg("/"))
    await expect(tab.locator(".alert-card").first).to_be_visible()
    cards = await tab.evaluate(CARD_FIGURES)
    alerts = {
        a.id: a for a in await alert_feed.feed(db, visible_until=utcnow(), limit=100, types=list(AlertType))
    }
    i18n = create_i18n()
    assert cards
    for card in cards:
        alert = alerts[card["id"]]
        sent = render_alert(alert, i18n=i18n, locale="en", tier=Tier.PRO, private=True, webapp_url=None).text
        expected = [
            format_usd(alert.current_volume),
            format_ratio(alert.ratio),
            format_price(alert.price),
            format_funding(alert.funding_rate),
        ]
        assert card["figures"] == expected and all(figure in sent for figure in expected)

    await tab.goto(site.tg("/markets"))
    await expect(tab.locator("#market-rows .m-row").first).to_be_visible()
    rows = await tab.evaluate(ROW_FIGURES)
    markets = {
        m["symbol"]: m for m in (await tab.evaluate("fetch('/api/markets').then((r) => r.json())"))["markets"]
    }

    def written(value: float | None, rule: Callable[[float], str]) -> str:
        return "–" if value is None else rule(value)

    assert len(rows) == len(markets) and {m["price"] >= 1000 for m in markets.values()} == {True, False}
    assert any(m["price"] < 1 for m in markets.values())  # all three price forms are compared
    for row in rows:
        m = markets[row["symbol"]]
        assert row["figures"] == [
            written(m["price"], format_price),
            written(m["change24h"], format_change),
            written(m["hourQuoteVolume"], format_usd),
            written(m["ratio"], format_ratio),
            format_funding(m["fundingRate"]),
        ], row["symbol"]
    assert console.errors == []


async def test_markets_sort_by_a_column_and_search(page, site: Site) -> None:
    tab, console = page
    await tab.goto(site.tg("/markets"))
    await tab.locator(".m-row").first.wait_for()
    assert await tab.locator(".m-row").count() == 40
    await tab.locator("[data-sort='price']").click()  # highest price first
    assert await tab.locator(".m-row").first.get_attribute("data-symbol") == "BTCUSDT"
    await tab.locator("[data-sort='price']").click()  # then lowest first
    assert await tab.locator(".m-row").first.get_attribute("data-symbol") != "BTCUSDT"
    await tab.locator("#market-search").fill("eth")
    await expect(tab.locator(".m-row")).to_have_count(1)
    assert await tab.locator(".m-row").first.get_attribute("data-symbol") == "ETHUSDT"
    assert console.errors == []


async def test_settings_are_saved_with_telegrams_main_button(page, site: Site, db) -> None:
    tab, console = page
    await tab.goto(site.tg("/settings"))
    await expect(tab.locator("#timezone")).to_have_value("UTC")
    assert console.posted("web_app_setup_main_button", "is_visible: true")
    assert await tab.locator("#save-settings").is_hidden()  # Telegram's MainButton, not an in-page one
    await tab.locator("label[for='paused']").click()
    await tab.select_option("#spikeMultiple", "5.0")
    async with tab.expect_response(
        lambda r: r.url.endswith("/api/settings") and r.request.method == "PUT"
    ) as saved:
        # what Telegram's client sends when the user taps the MainButton
        await tab.evaluate("window.Telegram.WebView.receiveEvent('main_button_pressed')")
    assert (await saved.value).status == 200
    row = await db.fetchrow("SELECT paused, spike_multiple FROM user_settings WHERE user_id = $1", USER)
    assert row["paused"] is True and row["spike_multiple"] == 5.0
    await screenshot(tab, "settings-light")
    assert console.errors == []


async def test_a_startapp_parameter_opens_that_chart(page, site: Site) -> None:
    tab, console = page
    await tab.goto(site.tg("/", start_param="ETHUSDT"))
    await tab.wait_for_url("**/chart/ETHUSDT**")
    await first_candles(tab)
    assert await tab.locator("#chart-page").get_attribute("data-symbol") == "ETHUSDT"
    assert console.errors == []


async def test_scrolling_back_loads_older_candles(page, site: Site) -> None:
    tab, console = page
    await tab.goto(site.tg("/chart/BTCUSDT?interval=1m"))
    await first_candles(tab)
    older: list[str] = []
    tab.on("request", lambda r: older.append(r.url) if "/api/candles" in r.url and "to=" in r.url else None)
    for _ in range(40):  # a horizontal wheel towards the past until older candles are asked for
        box = await tab.locator("#chart").bounding_box()  # where the chart is now (layout may move it)
        assert box is not None
        await tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
        await tab.mouse.wheel(-400, 0)
        if older:
            break
        await tab.wait_for_timeout(250)  # a busy machine: give the chart a frame to handle the wheel
    assert older, "scrolling back never asked for older candles"
    assert console.errors == []


async def test_public_view_without_init_data_shows_the_delayed_feed_markets_and_charts(
    page, site: Site
) -> None:
    tab, console = page
    await tab.goto(f"{site.base}/")
    cards = tab.locator(".alert-card")
    await cards.first.wait_for()
    # the feed's public banner is the intro: what VolSpike is and how to get it in Telegram
    assert await tab.locator("#intro").is_visible()
    assert await tab.locator(".public-banner").count() == 0
    link = tab.locator("#intro-open")
    assert await link.get_attribute("href") == "https://t.me/VolSpikeBot/app"
    # free: 15 minutes late, spikes only: the 25- and 40-minute-old ones and the 3-hour-old one
    assert await cards.count() == 3
    assert await tab.locator("#tier-chip").is_hidden()
    await screenshot(tab, "public-feed-light")
    await tab.goto(f"{site.base}/markets")
    await tab.locator(".m-row").first.wait_for()
    assert await tab.locator(".m-row .star").count() == 0  # watching needs Telegram
    await tab.goto(f"{site.base}/chart/BTCUSDT")
    await first_candles(tab)
    assert (
        await tab.locator(".public-banner a").get_attribute("href")
        == "https://t.me/VolSpikeBot/app?startapp=BTCUSDT"
    )
    await screenshot(tab, "public-chart-light")
    assert console.errors == []


async def until(predicate, timeout: float = 15.0) -> None:
    """Poll a server-side condition (the browser's socket reaching the hub), bounded."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def live_kline(symbol: str, close: float) -> Kline:
    open_ms = int(utcnow().timestamp() // 60 * 60_000)
    return Kline(
        symbol=symbol,
        interval="1m",
        open_time_ms=open_ms,
        close_time_ms=open_ms + 59_999,
        open=close - 100,
        high=close,
        low=close - 150,
        close=close,
        # Far more than a seeded minute of this hour ($19–35M), so the total shown to three significant
        # figures surely changes whatever minute of the hour the test runs in.
        volume=5_000.0,
        quote_volume=500_000_000.0,
        trades=500,
        taker_buy_volume=2_500.0,
        taker_buy_quote=250_000_000.0,
        closed=False,
        event_time_ms=open_ms + 1000,
    )


async def test_the_forming_candle_and_the_price_update_live_over_the_socket(
    page, site: Site, redis, names
) -> None:
    tab, console = page
    await tab.goto(site.tg("/chart/BTCUSDT?interval=15m"))
    await first_candles(tab)
    hub = site.app[LIVE_HUB]
    await until(lambda: any("BTCUSDT" in c.symbols for c in hub.clients))
    before = await tab.locator("#hour-volume").inner_text()
    feed = CandleFeed(redis, names)
    feed.update(live_kline("BTCUSDT", 123_456.0))
    assert await feed.flush() == 1
    await expect(tab.locator("#last-price")).to_have_text("$123,456.00")
    assert await tab.locator("#hour-volume").inner_text() != before  # the live minute is in this hour
    assert console.errors == []


async def test_an_elite_user_sees_a_new_alert_slide_into_the_feed(page, site: Site, db, redis, names) -> None:
    await set_tier(db, USER, "elite")
    tab, console = page
    await tab.goto(site.tg("/"))
    await tab.locator(".alert-card").first.wait_for()
    assert await tab.locator("#live-dot").is_visible()
    hub = site.app[LIVE_HUB]
    await until(lambda: any(c.alerts for c in hub.clients))
    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    stored = max(2, (now - hour) // timedelta(minutes=1))  # the hour's closed minutes so far
    await add_minutes(db, "XRPUSDT", hour, stored, price=0.6)
    alert = Alert(
        symbol="XRPUSDT",
        asset="XRP",
        alert_type=AlertType.SPIKE,
        hour=hour,
        detected_at=max(now, hour + timedelta(minutes=stored)),
        current_volume=9e6,
        previous_volume=2e6,
        ratio=4.5,
        price=0.62,
        funding_rate=0.0001,
    )
    assert await AlertPublisher(db, redis, names).emit(alert) is not None
    fresh = tab.locator(".alert-card.fresh")
    await fresh.wait_for()
    assert await fresh.locator(".card-link").get_attribute("href") == "/chart/XRPUSDT"
    # The card slides in with the hour's sparkline drawn, not blank until the next refresh.
    await expect(fresh.locator("svg.spark")).to_have_attribute("data-points", str(stored))
    assert await tab.locator(".alert-card .card-link").first.get_attribute("href") == "/chart/XRPUSDT"
    await tab.wait_for_timeout(1000)  # the slide-in's animation, for the picture only
    await screenshot(tab, "feed-live-card-light")
    context = tab.context

    # Reopened in the dark theme (a new tab: the launch parameters live in the tab's session),
    # the next live card comes with its sparkline too.
    await tab.close()
    tab = await context.new_page()
    tab.on("console", console.on_console)
    tab.on("pageerror", console.on_error)
    await tab.goto(site.tg("/", theme=DARK_THEME))
    await tab.locator(".alert-card").first.wait_for()
    assert await tab.evaluate("document.documentElement.dataset.scheme") == "dark"
    await until(lambda: sum(1 for c in hub.clients if c.alerts) == 1)
    await add_minutes(db, "ADAUSDT", hour, stored, price=0.4)
    ada = dataclasses.replace(alert, symbol="ADAUSDT", asset="ADA", price=0.45)
    assert await AlertPublisher(db, redis, names).emit(ada) is not None
    dark = tab.locator(".alert-card.fresh[data-symbol='ADAUSDT']")
    await expect(dark.locator("svg.spark")).to_have_attribute("data-points", str(stored))
    await tab.wait_for_timeout(1000)
    await screenshot(tab, "feed-live-card-dark")
    assert console.errors == []


async def test_an_alert_card_shows_the_context_lines_the_bot_sends(
    page, site: Site, db, redis, names
) -> None:
    await set_tier(db, USER, "elite")
    tab, console = page
    now = utcnow()
    context = AlertContext(
        taker_buy_share=0.71,
        price_change_1h=3.5,
        price_change_24h=None,  # unknown: written as such, never as zero
        open_interest_change_1h=-2.25,
        funding_percentile=92.0,
        turnover_24h=48e6,
        rank_top_percent=100 / 31,
    )

    def alert(symbol: str, detected_at: datetime) -> Alert:
        return Alert(
            symbol=symbol,
            asset=symbol.removesuffix("USDT"),
            alert_type=AlertType.SPIKE,
            hour=detected_at.replace(minute=0, second=0, microsecond=0),
            detected_at=detected_at,
            current_volume=9e6,
            previous_volume=2e6,
            ratio=4.5,
            price=0.62,
            funding_rate=0.0001,
            context=context,
        )

    i18n = create_i18n()

    def bot_lines(item: Alert) -> list[str]:
        sent = render_alert(item, i18n=i18n, locale="en", tier=Tier.ELITE, private=True, webapp_url=None)
        return sent.text.split("\n")[3:5]

    stored = alert("XRPUSDT", now - timedelta(hours=2))
    stored_id = await insert_alert(db, stored)
    await tab.goto(site.tg("/"))
    card = tab.locator(f".alert-card[data-id='{stored_id}'] .alert-context")
    await expect(card.first).to_be_visible()
    assert await card.all_text_contents() == bot_lines(stored)
    assert "n/a 24h" in (await card.all_text_contents())[0]

    hub = site.app[LIVE_HUB]
    await until(lambda: any(c.alerts for c in hub.clients))
    live = alert("DOGEUSDT", utcnow())
    assert await AlertPublisher(db, redis, names).emit(live) is not None
    fresh = tab.locator(".alert-card.fresh .alert-context")
    await fresh.first.wait_for()
    assert await fresh.all_text_contents() == bot_lines(live)
    await screenshot(tab, "feed-alert-context")
    assert console.errors == []
