"""/billing in a real Chromium (Debian's, driven by Playwright): Log In With Telegram through
the OAuth look-alike, choose a plan, arrive at the Stripe look-alike's Checkout page."""

from __future__ import annotations

import pytest

from tests.billing_harness import billing
from tests.browser_harness import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, browser_available

if not browser_available():
    pytest.skip("Debian's /usr/bin/chromium is absent and could not be installed", allow_module_level=True)

from playwright.async_api import async_playwright, expect


async def test_a_browser_signs_in_with_telegram_chooses_a_plan_and_arrives_at_checkout(settings, db, redis):
    async with billing(settings, db, redis) as site, async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page()
            await page.goto(site.url("/billing"))
            await page.click("#telegram-login")
            await expect(page.locator('[data-checkout="pro"]')).to_be_visible()
            assert page.url == site.url("/billing")
            await expect(page.locator("#current-plan")).to_contain_text("Free")
            await page.click('[data-checkout="pro"]')
            await expect(page.locator("#checkout")).to_have_text("Pay cs_test_1")
            assert page.url == f"{site.stripe.url}/c/pay/cs_test_1"
            [params] = [p for _, what, p in site.stripe.requests if what == "checkout.sessions.create"]
            assert params["client_reference_id"] == str(site.oauth.user["id"])
            assert params["metadata"]["tier"] == "pro"
        finally:
            await chromium.close()


async def test_signed_in_on_the_web_the_mini_app_pages_work_on_a_desktop_browser(settings, db, redis):
    """The web session stands in for initData: settings are saved (with the CSRF header), the
    watchlist is the user's, not the public view."""
    async with billing(settings, db, redis) as site, async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(site.url("/billing"))
            await page.click("#telegram-login")
            await expect(page.locator('[data-checkout="pro"]')).to_be_visible()
            user_id = site.oauth.user["id"]

            await page.goto(site.url("/settings"))
            await expect(page.locator("#save-settings")).to_be_visible()
            assert await page.locator("#settings-public").is_hidden()
            await page.check("#paused")
            await page.click("#save-settings")
            await expect(page.locator("#status[data-kind=ok]")).to_be_visible()
            assert await db.fetchval("SELECT paused FROM user_settings WHERE user_id = $1", user_id) is True

            await page.goto(site.url("/watchlist"))
            assert await page.locator("#watch-public").is_hidden()
            assert errors == []
        finally:
            await chromium.close()


PLANS_BEFORE_LOGIN = """() => {
  const table = document.querySelector('table.plans');
  const login = document.getElementById('telegram-login');
  return {
    before: table.getBoundingClientRect().bottom <= login.getBoundingClientRect().top,
    prices: [...table.querySelectorAll('.price-cell')].map((cell) => cell.textContent.trim()),
    cards: [...table.querySelectorAll('.card-price')].map((cell) => cell.textContent.trim()),
    scheme: document.documentElement.dataset.scheme,
    background: getComputedStyle(table).backgroundColor,
  };
}"""


async def test_billing_shows_the_plans_with_prices_before_the_sign_in_in_a_dark_theme(settings, db, redis):
    """A visitor on a desktop browser with a dark system theme: the tier table with each plan's
    price (by card as Stripe has it, and in Stars) comes first, themed dark, then Log In With
    Telegram."""
    async with billing(settings, db, redis) as site, async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page(viewport={"width": 1280, "height": 800}, color_scheme="dark")
            await page.goto(site.url("/billing"))
            await expect(page.locator("#telegram-login")).to_be_visible()
            seen = await page.evaluate(PLANS_BEFORE_LOGIN)
            assert seen["before"]
            assert seen["prices"] == ["Free", "250 ⭐ / 30 days", "750 ⭐ / 30 days"]
            assert seen["cards"] == ["Free", "$9.00 / month", "$29.00 / month"]  # the look-alike's prices
            assert (seen["scheme"], seen["background"]) == ("dark", "rgb(23, 33, 43)")  # dark --section-bg
            await page.screenshot(path=str(ARTIFACTS / "billing-desktop-dark.png"))
        finally:
            await chromium.close()
