"""The chart as a trader uses it on a phone inside Telegram: a tap on a candle reads its OHLC
and volume, times read in the device's time zone, the 24-hour change beside the price, every
price with the decimals of the symbol's tick size, "back to now" after dragging into the past,
and an elite user's alert marker arriving live over /ws while the chart is open."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from core.alerts import Alert, AlertType
from core.number_format import format_change, format_usd
from db.publisher import AlertPublisher
from tests.browser_harness import PHONE, browser_available, seed, seed_candles, utcnow
from tests.miniapp_harness import set_tier
from webapp.ws import LIVE_HUB

if not browser_available():
    pytest.skip("Debian's /usr/bin/chromium is absent and could not be installed", allow_module_level=True)

from playwright.async_api import Browser, Page, expect

from tests.miniapp_browser import (  # noqa: F401
    USER,
    Console,
    Site,
    browser,
    first_candles,
    open_site,
    page,
    screenshot,
)

BTC_DECIMALS = 1  # Binance's BTCUSDT tickSize 0.10


@pytest.fixture
async def site(settings, db, redis, names) -> AsyncIterator[Site]:
    """The seeded market with BTCUSDT's tick size known (0.10), a pro user."""
    await seed(db, redis, names, utcnow())
    await db.execute("UPDATE symbols SET price_precision = $1 WHERE symbol = 'BTCUSDT'", BTC_DECIMALS)
    await set_tier(db, USER, "pro")
    async with open_site(settings, db, redis) as opened:
        yield opened


def btc(value: float, prefix: str = "$") -> str:
    return f"{prefix}{value:,.{BTC_DECIMALS}f}"


async def candles(tab: Page, interval: str) -> dict[int, dict[str, float]]:
    """The candles the API answers, by open time."""
    page = await tab.evaluate(
        "(i) => fetch(`/api/candles?symbol=BTCUSDT&interval=${i}&limit=300`).then((r) => r.json())", interval
    )
    return {c["t"]: c for c in page["candles"]}


async def readout(tab: Page) -> dict[str, str]:
    return {
        name: (await tab.locator(f"#ro-{name}").inner_text()).strip()
        for name in ("time", "open", "high", "low", "close", "volume")
    }


async def chart_box(tab: Page) -> dict[str, float]:
    box = await tab.locator("#chart").bounding_box()
    assert box is not None
    return box


async def test_a_tapped_candle_reads_its_ohlc_and_volume_and_a_reopen_reads_the_newest(
    page, site: Site
) -> None:
    tab, console = page
    await tab.goto(site.tg("/chart/BTCUSDT?interval=1h"))
    await first_candles(tab)
    bars = await candles(tab, "1h")
    newest = max(bars)
    await expect(tab.locator("#readout")).to_have_attribute("data-t", str(newest))
    close = bars[newest]["c"]
    await expect(tab.locator("#last-price")).to_have_text(btc(close))

    box = await chart_box(tab)
    await tab.touchscreen.tap(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
    await expect(tab.locator("#readout")).not_to_have_attribute("data-t", str(newest))
    tapped = int(await tab.locator("#readout").get_attribute("data-t") or 0)
    bar = bars[tapped]
    shown = await readout(tab)
    assert shown["open"] == btc(bar["o"], "") and shown["high"] == btc(bar["h"], "")
    assert shown["low"] == btc(bar["l"], "") and shown["close"] == btc(bar["c"], "")
    assert shown["volume"] == format_usd(bar["v"])
    assert tapped < newest and newest - tapped >= 3600 * 5  # a candle well left of the newest
    await screenshot(tab, "chart-readout-tapped")

    await tab.reload()  # reopened: the newest candle again
    await first_candles(tab)
    await expect(tab.locator("#readout")).to_have_attribute("data-t", str(newest))
    assert (await readout(tab))["close"] == btc(close, "")
    assert console.errors == []


async def test_every_price_on_the_chart_has_the_tick_sizes_decimals(page, site: Site) -> None:
    tab, console = page
    await tab.goto(site.tg("/chart/BTCUSDT?interval=15m"))
    await first_candles(tab)
    for selector in ("#last-price", "#ro-open", "#ro-high", "#ro-low", "#ro-close"):
        text = await tab.locator(selector).inner_text()
        assert len(text.split(".")[1]) == BTC_DECIMALS, (selector, text)
    assert console.errors == []


async def test_candle_times_read_in_the_users_time_zone_like_the_feed(
    browser: Browser, site: Site, db
) -> None:
    """Kathmandu is UTC+05:45: an hourly candle opening on the hour UTC reads hh:45 there, while the
    user's setting is the default UTC; once they choose Asia/Tokyo (+09:00), the feed and the chart
    read hh:00 in Tokyo on that same device."""
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, has_touch=True, timezone_id="Asia/Kathmandu"
    )
    tab = await context.new_page()
    console = Console()
    tab.on("pageerror", console.on_error)
    try:
        await tab.goto(site.tg("/"))
        card_time = tab.locator(".alert-card .when").first
        await card_time.wait_for()
        await card_time.click()  # relative ("25 min. ago") until tapped, then the time in full
        detected = await card_time.get_attribute("data-at")
        assert detected
        expected = await tab.evaluate(
            "(iso) => new Date(iso).toLocaleString('en', {hour: '2-digit', minute: '2-digit'})", detected
        )
        assert expected in await card_time.inner_text()  # the feed: the device's zone
        await tab.goto(site.tg("/chart/BTCUSDT?interval=1h"))
        await first_candles(tab)
        shown = await tab.locator("#ro-time").inner_text()
        newest = int(await tab.locator("#readout").get_attribute("data-t") or 0)
        assert newest % 3600 == 0 and ":45" in shown, shown
        iso = await tab.locator("#ro-time").get_attribute("datetime")
        local = await tab.evaluate(
            "(iso) => new Date(iso).toLocaleString('en', {hour: '2-digit', minute: '2-digit'})", iso
        )
        assert shown.endswith(local), (shown, local)  # the same clock the feed's cards use

        changed = await db.execute(
            "UPDATE user_settings SET timezone = 'Asia/Tokyo' WHERE user_id = $1", USER
        )
        assert changed == "UPDATE 1"
        tokyo = (
            "(iso) => new Date(iso).toLocaleString('en', "
            "{hour: '2-digit', minute: '2-digit', timeZone: 'Asia/Tokyo'})"
        )
        await tab.goto(site.tg("/"))
        await card_time.wait_for()
        await card_time.click()
        await expect(card_time).to_contain_text(await tab.evaluate(tokyo, detected))
        await expect(card_time).to_contain_text("(Asia/Tokyo)")
        await tab.goto(site.tg("/chart/BTCUSDT?interval=1h"))
        await first_candles(tab)
        await expect(tab.locator("#ro-time")).to_have_text(re.compile(r":00( [AP]M)?$"))
        iso = await tab.locator("#ro-time").get_attribute("datetime")
        assert (await tab.locator("#ro-time").inner_text()).endswith(await tab.evaluate(tokyo, iso))
        assert console.errors == []
    finally:
        await context.close()


async def test_six_digit_prices_in_the_readout_never_run_into_each_other_at_360px(
    browser: Browser, site: Site, db
) -> None:
    """BTC above $100,000 with its 0.1 tick: four figures of nine characters and the volume do not
    fit one line at 360 px; they wrap, each inside its own box, none over its neighbour."""
    moved = await db.execute(
        "UPDATE candles_1m SET open = open + 9500, high = high + 9500, low = low + 9500, "
        "close = close + 9500 WHERE symbol = 'BTCUSDT'"
    )
    assert moved != "UPDATE 0"
    context = await browser.new_context(
        viewport={"width": 360, "height": 740}, device_scale_factor=2, has_touch=True
    )
    tab = await context.new_page()
    try:
        await tab.goto(site.tg("/chart/BTCUSDT?interval=1m"))
        await first_candles(tab)
        await expect(tab.locator("#ro-high")).to_have_text(re.compile(r"^1\d\d,\d{3}\.\d$"))
        boxes = await tab.evaluate(
            """() => ['open', 'high', 'low', 'close', 'volume'].map((name) => {
              const node = document.getElementById(`ro-${name}`);
              const box = node.getBoundingClientRect();
              return {name, left: box.left, right: box.right, top: box.top, bottom: box.bottom,
                      overflows: node.scrollWidth > node.clientWidth + 1};
            })"""
        )
        width = await tab.evaluate("document.documentElement.clientWidth")
        for box in boxes:
            assert not box["overflows"] and box["right"] <= width, box
        for a, b in itertools.pairwise(boxes):
            same_line = abs(a["top"] - b["top"]) < 2
            assert not same_line or a["right"] <= b["left"], (a, b)  # side by side, never overlapping
        await screenshot(tab, "chart-readout-six-digits-360")
    finally:
        await context.close()


async def test_the_24_hour_change_is_beside_the_price(page, site: Site, db) -> None:
    tab, console = page
    await tab.goto(site.tg("/chart/BTCUSDT?interval=1h"))
    await first_candles(tab)
    node = tab.locator("#change-24h")
    await expect(node).to_have_attribute("data-since", re.compile(r"^\d+$"))  # 24 hours ago
    since = int(await node.get_attribute("data-since") or 0)
    open_24h = await db.fetchval(
        "SELECT open FROM candles_1m WHERE symbol = 'BTCUSDT' AND open_time = to_timestamp($1)", since
    )
    last = await db.fetchval(
        "SELECT close FROM candles_1m WHERE symbol = 'BTCUSDT' ORDER BY open_time DESC LIMIT 1"
    )
    assert open_24h is not None
    expected = format_change((last / open_24h - 1) * 100)
    await expect(node).to_have_text(expected)
    assert await node.get_attribute("class") in ("up", "down")
    assert console.errors == []


async def test_back_to_now_appears_after_dragging_into_the_past_and_returns(page, site: Site) -> None:
    tab, console = page
    await tab.goto(site.tg("/chart/BTCUSDT?interval=5m"))
    await first_candles(tab)
    button = tab.locator("#back-to-now")
    await expect(button).to_be_hidden()  # at the newest candle there is nothing to return to
    box = await chart_box(tab)
    y = box["y"] + box["height"] / 3
    for _ in range(3):  # a finger dragging the candles to the right, towards the past
        await tab.mouse.move(box["x"] + 40, y)
        await tab.mouse.down()
        await tab.mouse.move(box["x"] + box["width"] - 80, y, steps=8)
        await tab.mouse.up()
    await expect(button).to_be_visible()
    await screenshot(tab, "chart-back-to-now")
    tap_box = await button.bounding_box()
    assert tap_box is not None and tap_box["width"] >= 44 and tap_box["height"] >= 44
    haptics = sum(line.startswith("web_app_trigger_haptic_feedback") for line in console.bridge)
    await button.tap()
    await expect(button).to_be_hidden()
    await tab.wait_for_timeout(1_500)  # older candles still arriving keep the view at now
    await expect(button).to_be_hidden()
    assert sum(line.startswith("web_app_trigger_haptic_feedback") for line in console.bridge) > haptics
    assert console.errors == []


def xrp_spike(detected_at: datetime) -> Alert:
    """A spike of XRP, which has no alert yet (one spike per symbol and hour)."""
    return Alert(
        symbol="XRPUSDT",
        asset="XRP",
        alert_type=AlertType.SPIKE,
        hour=detected_at.replace(minute=0, second=0, microsecond=0),
        detected_at=detected_at,
        current_volume=7.77e8,
        previous_volume=1e8,
        ratio=7.77,
        price=2.5,
        funding_rate=0.0001,
    )


async def test_an_elite_users_open_chart_gets_a_new_alert_live(page, site: Site, db, redis, names) -> None:
    await set_tier(db, USER, "elite")
    await seed_candles(db, "XRPUSDT", utcnow().replace(second=0, microsecond=0), 120, 2.5)
    tab, console = page
    await tab.goto(site.tg("/chart/XRPUSDT?interval=1m"))
    await first_candles(tab)
    hub = site.app[LIVE_HUB]
    async with asyncio.timeout(10):
        while not any(c.alerts for c in hub.clients):  # noqa: ASYNC110 - the server's state
            await asyncio.sleep(0.05)
    await expect(tab.locator("#last-alert")).not_to_contain_text("7.77×")
    alert = xrp_spike(utcnow())
    assert await AlertPublisher(db, redis, names).emit(alert) is not None  # as ingest fires it
    await expect(tab.locator("#last-alert")).to_contain_text("7.77×", timeout=5_000)
    assert console.errors == []


async def test_a_pro_users_chart_shows_an_alert_when_the_pro_delay_has_passed_not_before(
    page, site: Site, db, redis, names
) -> None:
    """Pro sees alerts 5 minutes late: the socket carries no alert to a pro user, and the marker
    appears within seconds of the moment the delay has passed (the chart stays open)."""
    now = utcnow()
    visible_at = now + timedelta(seconds=8)
    await seed_candles(db, "XRPUSDT", now.replace(second=0, microsecond=0), 120, 2.5)
    alert = xrp_spike(visible_at - timedelta(minutes=5))
    assert await AlertPublisher(db, redis, names).emit(alert) is not None  # published live: elite's
    tab, console = page
    await tab.goto(site.tg("/chart/XRPUSDT?interval=1m"))
    await first_candles(tab)
    hub = site.app[LIVE_HUB]
    async with asyncio.timeout(10):
        while not hub.clients:  # noqa: ASYNC110 - the server's state
            await asyncio.sleep(0.05)
    await expect(tab.locator("#last-alert")).not_to_contain_text("7.77×")
    early = (visible_at - utcnow()).total_seconds()
    assert early > 1, "the page took the whole delay to open; the check before it proves nothing"
    await tab.wait_for_timeout(max(0, early - 1) * 1000)
    await expect(tab.locator("#last-alert")).not_to_contain_text("7.77×")  # not a second early
    await expect(tab.locator("#last-alert")).to_contain_text("7.77×", timeout=20_000)
    shown_after = (utcnow() - visible_at).total_seconds()
    assert shown_after < 17, shown_after  # the 10 s poll and the 5 s shared answer at most
    assert console.errors == []
