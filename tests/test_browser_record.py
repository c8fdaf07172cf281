"""The track record and alert outcomes in a real Chromium at phone size, against the real webapp on
real PostgreSQL and Redis: /record on the web (public) and inside Telegram, the feed card's
outcome line. Screenshots under .artifacts/browser/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from core.clock import ManualClock
from ingest.outcomes import OutcomesJob
from tests.browser_harness import (
    ARTIFACTS,
    LIGHT_THEME,
    PHONE,
    browser_available,
    serve,
    signed_init_data,
    telegram_url,
    utcnow,
)
from tests.miniapp_harness import BOT_TOKEN, add_symbols, set_tier
from tests.outcome_harness import Scenario, seed_track_record, write
from tests.test_what_if import market

if not browser_available():
    pytest.skip("Debian's /usr/bin/chromium is absent and could not be installed", allow_module_level=True)

from playwright.async_api import Browser, Page, expect

from tests.miniapp_browser import USER, browser  # noqa: F401 (the module's Chromium)


@pytest.fixture
async def site(settings, db, redis) -> AsyncIterator[str]:
    now = utcnow()
    await seed_track_record(db, now, 40)
    await add_symbols(db, ["XUSDT", "BTCUSDT"])
    hour = (now - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    await write(db, Scenario(), detected=hour + timedelta(minutes=20, seconds=30))
    await OutcomesJob(db, lookback_days=30, clock=ManualClock(now)).run_once()
    app_settings = settings.model_copy(update={"bot_token": SecretStr(BOT_TOKEN)})
    async with serve(app_settings, db, redis) as (base, _app):
        yield base


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    await context.close()
    assert errors == []


async def test_record_page_at_phone_size(tab: Page, site: str) -> None:
    await tab.goto(f"{site}/record")
    groups = tab.locator(".record-group")
    assert await groups.count() == 6  # all, ratio, rank, taker, liquidity, early warnings
    assert await tab.locator(".record-group[data-grouping='rank'] .record-row").count() >= 1
    assert await tab.locator(".record-group[data-grouping='early'] .record-row").count() == 0  # none yet
    assert await tab.locator(".record-group[data-grouping='ratio'] .record-row").count() >= 2
    everything = tab.locator(".record-group[data-grouping='all'] .record-row")
    assert "n = 41" in await everything.inner_text()  # 40 seeded + the computed one
    box = await everything.locator(".record-box").bounding_box()
    assert box is not None and box["width"] > 4  # the quartile box is drawn
    assert await tab.locator(".badge-small").count() >= 1  # buckets under 30 alerts say so
    width = await tab.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"]  # nothing runs off a phone's screen
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await tab.screenshot(path=str(ARTIFACTS / "record-light.png"), full_page=True)
    await tab.locator("a.chip-link", has_text="90").click()
    await tab.wait_for_url("**/record?days=90**")
    assert await tab.locator("a.chip-link[aria-current='true']", has_text="90").count() == 1
    await tab.locator("a.chip-link", has_text="4").click()
    await tab.wait_for_url("**h=240**")


async def test_record_opens_inside_telegram_with_a_back_button(tab: Page, site: str) -> None:
    bridge: list[str] = []
    tab.on("console", lambda m: bridge.append(m.text))
    init = signed_init_data(BOT_TOKEN, USER, utcnow())
    await tab.goto(telegram_url(site, "/record", init, LIGHT_THEME))
    await tab.locator(".record-group").first.wait_for()
    assert await tab.evaluate("document.documentElement.classList.contains('in-telegram')")
    assert any("web_app_setup_back_button" in line and "is_visible: true" in line for line in bridge)


async def test_feed_card_shows_the_move_after_the_spike(tab: Page, site: str) -> None:
    await tab.goto(f"{site}/?symbol=")
    card = tab.locator(".alert-card[data-symbol='XUSDT']")
    await card.wait_for()
    line = await card.locator(".alert-outcome").inner_text()
    assert line == "+5.00% after 4 h · vs BTC +3.00%"
    assert await card.locator(".alert-outcome b.up").count() == 1


async def test_settings_page_says_what_the_thresholds_would_have_given(
    browser: Browser, settings, db, redis
) -> None:
    await market(db, utcnow())
    await set_tier(db, USER, "pro")
    app_settings = settings.model_copy(update={"bot_token": SecretStr(BOT_TOKEN)})
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = await context.new_page()
    async with serve(app_settings, db, redis) as (base, _app):
        await page.goto(
            telegram_url(base, "/settings", signed_init_data(BOT_TOKEN, USER, utcnow()), LIGHT_THEME)
        )
        note = page.locator("#what-if")
        await note.wait_for()
        assert await note.inner_text() == (
            "With these thresholds you would have had 0.2 alerts a day over the last 10 days; "
            "median move after 1 h: +0.50%."
        )  # the default 3× and $3M: A and B
        await page.locator("#spikeMultiple").select_option("5.0")
        await expect(note).to_contain_text("0.1 alerts a day")
        assert (await note.inner_text()).endswith("median move after 1 h: +2.00%.")  # A only
    await context.close()
