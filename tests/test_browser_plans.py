"""The plans page's Stars button in a real Chromium, inside Telegram as the browser tests emulate
it (signed initData in the URL fragment; Telegram's WebApp script logs every event it posts to
the client, and the test answers as the client would through `Telegram.WebView.receiveEvent`).
The button asks the real API for an invoice link, which the webapp makes through the Telegram
look-alike's createInvoiceLink; `openInvoice` posts that invoice's slug; once the payment is
recorded as the bot records it, the client's "paid" status makes the page show the new tier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from bot.payments.recording import StarsCharge, record_payment
from tests.browser_harness import (
    LIGHT_THEME,
    PHONE,
    browser_available,
    serve,
    signed_init_data,
    telegram_url,
    utcnow,
)
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.fakes.telegram_payments import FakeStars

if not browser_available():
    pytest.skip("Debian's /usr/bin/chromium is absent and could not be installed", allow_module_level=True)

from playwright.async_api import Browser, ConsoleMessage, expect

from tests.miniapp_browser import browser  # noqa: F401 (the module's Chromium)

USER = 8181
BRIDGE = "[Telegram.WebView] > postEvent "
PRICE = 300


@pytest.fixture
async def stars() -> AsyncIterator[FakeStars]:
    async with FakeTelegram() as tg:
        yield FakeStars(tg)


async def test_the_stars_button_opens_the_users_invoice_and_paid_shows_the_new_tier(
    browser: Browser, settings, db, redis, stars: FakeStars
) -> None:
    config = settings.model_copy(
        update={
            "bot_token": SecretStr(TOKEN),
            "telegram_api_url": stars.tg.url,
            "stars_price_pro": PRICE,
            "telegram_app_link": "https://t.me/VolSpikeBot/app",
        }
    )
    posted: list[str] = []
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)
        elif message.text.startswith(BRIDGE):
            posted.append(message.text.removeprefix(BRIDGE))

    async with serve(config, db, redis) as (base, _app):
        context = await browser.new_context(viewport=PHONE, device_scale_factor=2)
        tab = await context.new_page()
        tab.on("console", on_console)
        tab.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
        init = signed_init_data(TOKEN, USER, utcnow())
        await tab.goto(telegram_url(base, "/plans", init, LIGHT_THEME))
        await expect(tab.locator("#current-plan")).to_contain_text("Free")
        button = tab.locator("[data-buy='pro']")
        await expect(button).to_be_visible()
        assert await tab.locator("#plans-public").is_hidden()  # inside Telegram: Stars only
        assert await tab.locator("a[href*='billing'], a[href*='stripe']").count() == 0  # no card link

        await button.click()
        async with asyncio.timeout(10):
            while not any(p.startswith("web_app_open_invoice") for p in posted):  # noqa: ASYNC110 - the page's log
                await asyncio.sleep(0.05)
        [call] = stars.tg.calls_to("createInvoiceLink")
        assert call.params["payload"] == f"v1:subscription:pro:{PRICE}:{USER}"
        assert int(call.params["subscription_period"]) == 30 * 24 * 3600
        assert call.params["currency"] == "XTR" and [p["amount"] for p in call.params["prices"]] == [PRICE]
        [opened] = [p for p in posted if p.startswith("web_app_open_invoice")]
        assert "slug: inv1" in opened  # the link's slug (https://t.me/$inv1), as the script logs it

        now = utcnow()
        charge = StarsCharge(
            user_id=USER,
            charge_id="stars-charge-1",
            amount=PRICE,
            payload=call.params["payload"],
            is_recurring=False,
            subscription_expires_at=now + timedelta(days=30),
            source="update",
        )
        assert await record_payment(db, charge, now) is not None  # what the bot does on successful_payment
        async with tab.expect_navigation():
            await tab.evaluate(
                "Telegram.WebView.receiveEvent('invoice_closed', {slug: 'inv1', status: 'paid'})"
            )
        await expect(tab.locator("#current-plan")).to_contain_text("Pro")
        await expect(tab.locator("#tier-chip")).to_have_text("Pro")
        await context.close()
    assert errors == []
