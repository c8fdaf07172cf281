"""The web visitor and the narrow phone (#19 items 5, 6 and 7): on a desktop browser every page is
one centred column with the header and tab bar aligned to it; the public view's feed explains in its
first screen what VolSpike is and how to get it in Telegram; Markets at 360 px keeps every column
(two-line rows, funding sortable); with card payments off the billing links answer a page, not JSON;
the plans page offers only what the entitlement rule sells. Screenshots of every page on a desktop
go to .artifacts/browser/ (desktop-<page>-<view>.png) beside the phone ones of test_browser_fit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.browser_harness import browser_available
from tests.miniapp_controls import INTERACTIVE, PAGES

if not browser_available():
    pytest.skip("Debian's /usr/bin/chromium is absent and could not be installed", allow_module_level=True)

from playwright.async_api import Browser, Page, expect

from tests.miniapp_browser import USER, Console, Site, browser, new_tab, screenshot  # noqa: F401
from tests.miniapp_harness import set_tier
from tests.test_browser_controls import READY, site  # noqa: F401 (the elite site of the control table)
from tests.test_browser_fit import NARROW, OVERFLOW, SMALL_TARGETS, narrow, open_page  # noqa: F401

DESKTOP = {"width": 1280, "height": 800}
COLUMN = 880  # app.css --column
NAV = 56  # app.css --nav-height
APP_LINK = "https://t.me/VolSpikeBot/app"


@pytest.fixture
async def desktop(browser: Browser, site: Site) -> AsyncIterator[tuple[Page, Console]]:
    """A desktop browser window: a mouse, no touch."""
    async with new_tab(browser, viewport=DESKTOP, device_scale_factor=1) as opened:
        yield opened


LAYOUT = """() => {
  const visible = (nodes) =>
    [...nodes].filter((n) => n.checkVisibility()).map((n) => n.getBoundingClientRect());
  const main = document.querySelector('main').getBoundingClientRect();
  const tabs = visible(document.querySelectorAll('.tabbar a'));
  const header = visible(document.querySelectorAll('.app-header > *'));
  return {
    viewport: document.documentElement.clientWidth,
    left: main.left, right: main.right,
    tabs: tabs.length ? [Math.min(...tabs.map((r) => r.left)), Math.max(...tabs.map((r) => r.right))] : null,
    header: [Math.min(...header.map((r) => r.left)), Math.max(...header.map((r) => r.right))],
  };
}"""


@pytest.mark.parametrize("view", ["tg", "public"])
@pytest.mark.parametrize("name", list(PAGES))
async def test_on_a_desktop_every_page_is_one_centred_column(
    desktop, site: Site, name: str, view: str
) -> None:
    tab, _ = desktop
    await open_page(tab, site, name, view, "light")
    box = await tab.evaluate(LAYOUT)
    assert box["right"] - box["left"] == pytest.approx(COLUMN, abs=1)
    assert box["left"] == pytest.approx(box["viewport"] - box["right"], abs=1)  # centred
    assert box["left"] <= box["header"][0] and box["header"][1] <= box["right"]  # the header's ends too
    if box["tabs"] is not None:  # the chart has no tab bar
        assert box["left"] - 1 <= box["tabs"][0] and box["tabs"][1] <= box["right"] + 1
    assert await tab.evaluate(OVERFLOW) == []
    assert await tab.evaluate(SMALL_TARGETS, INTERACTIVE) == []
    await screenshot(tab, f"desktop-{name}-{view}")


@pytest.mark.parametrize("name", ["feed", "markets", "plans", "billing"])
async def test_on_a_desktop_the_public_view_follows_a_dark_system_theme(
    desktop, site: Site, name: str
) -> None:
    tab, console = desktop
    await open_page(tab, site, name, "public", "dark")
    assert await tab.evaluate("document.documentElement.dataset.scheme") == "dark"
    background = await tab.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(14, 22, 33)"  # app.css's dark --secondary-bg
    await screenshot(tab, f"desktop-{name}-public-dark")
    assert console.errors == []


INTRO = """() => {
  const intro = document.getElementById('intro');
  return { visible: intro.checkVisibility(), bottom: intro.getBoundingClientRect().bottom,
           height: window.innerHeight, text: intro.innerText };
}"""


@pytest.mark.parametrize("viewport", [NARROW, DESKTOP], ids=["360px", "desktop"])
async def test_the_public_view_says_what_volspike_is_and_how_to_get_it_in_one_screen(
    browser: Browser, site: Site, viewport: dict[str, int]
) -> None:
    context = await browser.new_context(viewport=viewport, has_touch=viewport is NARROW)
    try:
        tab = await context.new_page()
        await tab.goto(site.base + "/")
        await tab.locator(READY["feed"]).first.wait_for(state="attached", timeout=20_000)
        intro = await tab.evaluate(INTRO)
        assert intro["visible"]
        assert intro["bottom"] <= intro["height"] - NAV  # above the tab bar, no scrolling
        for words in ("Binance", "Telegram", "Start", "15 minutes late"):
            assert words in intro["text"]
        opened = tab.locator("#intro-open")
        assert await opened.get_attribute("href") == APP_LINK
        await tab.route(
            f"{APP_LINK}*", lambda route: route.fulfill(body="Telegram", content_type="text/plain")
        )
        await (opened.tap() if viewport is NARROW else opened.click())
        await tab.wait_for_url(APP_LINK)
        await tab.goto(site.tg("/"))  # inside Telegram the user has it already: no intro
        await tab.locator(READY["feed"]).first.wait_for(state="attached", timeout=20_000)
        await expect(tab.locator("#intro")).to_be_hidden()
    finally:
        await context.close()


ROWS = """() => [...document.querySelectorAll('.m-row')].slice(0, 12).map((row) => {
  const cells = [...row.querySelectorAll('.m-link > *')];
  const box = (n) => n.getBoundingClientRect();
  return {
    symbol: row.dataset.symbol,
    shown: cells.map((n) => n.checkVisibility()),
    tops: cells.map((n) => Math.round(box(n).top)),
    middles: cells.map((n) => Math.round(box(n).top + box(n).height / 2)),
    right: Math.max(...cells.map((n) => box(n).right)),
    funding: cells[5].textContent,
  };
})"""


async def test_markets_at_360px_keeps_every_column_on_two_line_rows(narrow, site: Site) -> None:
    tab, console = narrow
    await open_page(tab, site, "markets", "tg", "light")
    rows = await tab.evaluate(ROWS)
    assert rows
    for row in rows:
        assert row["shown"] == [True] * 6, row
        price, volume, funding = row["tops"][1], row["tops"][3], row["tops"][5]
        assert volume == funding and funding > price + 8, row  # the second line
        assert row["right"] <= NARROW["width"], row
        assert row["funding"].endswith("%"), row
    heading = tab.locator(".m-cols button[data-sort='fundingRate']")
    await expect(heading).to_be_visible()
    await heading.tap()
    await expect(heading).to_have_attribute("data-order", "descending")
    rates = await tab.evaluate(
        """async () => Object.fromEntries((await (await fetch('/api/markets')).json())
             .markets.map((m) => [m.symbol, m.fundingRate ?? -Infinity]))"""
    )
    shown = [r["symbol"] for r in await tab.evaluate(ROWS)]
    assert [rates[s] for s in shown] == sorted((rates[s] for s in shown), reverse=True)
    assert shown[0] == max(rates, key=lambda s: rates[s])
    await screenshot(tab, "markets-360-funding-sorted")
    assert console.errors == []


async def test_markets_on_a_desktop_keeps_one_line_rows(desktop, site: Site) -> None:
    tab, _ = desktop
    await open_page(tab, site, "markets", "tg", "light")
    for row in await tab.evaluate(ROWS):
        assert max(row["middles"]) - min(row["middles"]) <= 1, row  # one line


async def test_billing_links_with_card_payments_off_answer_the_billing_page(desktop, site: Site) -> None:
    """Log In With Telegram (and any card form) with Stripe off leads to /billing's page saying
    cards are off and where to pay instead, never a JSON error."""
    tab, console = desktop
    response = await tab.goto(site.base + "/billing/login")
    assert response is not None and response.headers["content-type"].startswith("text/html")
    assert tab.url == site.base + "/billing"
    await expect(tab.locator("#cards-off")).to_be_visible()
    await expect(tab.locator(".plans .price-cell[data-column='pro']")).to_contain_text("300 ⭐")
    posted = await tab.request.post(site.base + "/billing/checkout", form={"tier": "pro"}, max_redirects=0)
    assert (posted.status, posted.headers["location"]) == (303, "/billing")
    assert console.errors == []


async def test_the_plans_page_disables_what_the_entitlement_rule_would_refuse(narrow, site: Site, db) -> None:
    """The site's user has Elite with no end: Pro is lower, Elite has no end to extend; both
    buttons are disabled with the reason under them and no invoice is asked for. As Pro until a
    date, both are on sale again (a renewal, an upgrade)."""
    tab, console = narrow
    await open_page(tab, site, "plans", "tg", "dark")
    await expect(tab.locator("[data-buy='pro']")).to_be_disabled()
    await expect(tab.locator("[data-why='pro']")).to_have_text(
        "Your plan is higher than this one: it would add nothing."
    )
    await expect(tab.locator("[data-buy='elite']")).to_be_disabled()
    await expect(tab.locator("[data-why='elite']")).to_have_text("You have this plan with no end date.")
    await screenshot(tab, "plans-elite-forever-dark")
    await set_tier(db, USER, "pro", None)
    await db.execute("UPDATE users SET tier_expires_at = now() + interval '3 days' WHERE id = $1", USER)
    await tab.goto("about:blank")  # the same path with another fragment would not load the page again
    await open_page(tab, site, "plans", "tg", "light")
    for tier in ("pro", "elite"):
        await expect(tab.locator(f"[data-buy='{tier}']")).to_be_enabled()
        await expect(tab.locator(f"[data-why='{tier}']")).to_be_hidden()
    await tab.locator("[data-buy='elite']").tap()
    async with asyncio.timeout(10):
        while not console.posted("web_app_open_invoice"):  # noqa: ASYNC110 - the page's log
            await asyncio.sleep(0.05)
    assert console.errors == []
