"""The Mini App's browser-test fixtures: one Chromium per test module, the real webapp with a
seeded market (a pro user by default), and a phone-sized tab opened as Telegram opens a Mini App,
whose console errors and Telegram bridge calls are recorded. Test modules import the fixtures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright
from pydantic import SecretStr

from core.settings import Settings
from tests.browser_harness import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LIGHT_THEME,
    PHONE,
    ensure_assets,
    seed,
    serve,
    signed_init_data,
    telegram_url,
    utcnow,
)
from tests.miniapp_harness import BOT_TOKEN, set_tier
from webapp.ws import LIVE_HUB

USER = 1001
BRIDGE = "[Telegram.WebView] > postEvent "
APP_LINK = "https://t.me/VolSpikeBot/app"


@dataclass
class Site:
    base: str
    app: web.Application
    token: str = BOT_TOKEN  # the bot token initData is signed with

    def tg(
        self,
        path: str,
        *,
        theme: dict[str, str] = LIGHT_THEME,
        start_param: str | None = None,
        language: str = "en",
    ) -> str:
        init = signed_init_data(self.token, USER, utcnow(), start_param=start_param, language=language)
        return telegram_url(self.base, path, init, theme)


@dataclass
class Console:
    """Errors the page reported: console.error lines and uncaught exceptions."""

    errors: list[str] = field(default_factory=list)
    bridge: list[str] = field(default_factory=list)  # what the page asked Telegram's client to do

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)
        elif message.text.startswith(BRIDGE):  # Telegram's script logs every event it posts
            self.bridge.append(message.text.removeprefix(BRIDGE))

    def posted(self, event: str, detail: str = "") -> bool:
        return any(line.startswith(event) and detail in line for line in self.bridge)

    def on_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    ensure_assets()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@asynccontextmanager
async def open_site(settings: Settings, db, redis, **overrides: object) -> AsyncIterator[Site]:
    """The real webapp for a browser test, its live hub subscribed; `overrides` are settings."""
    app_settings = settings.model_copy(
        update={"bot_token": SecretStr(BOT_TOKEN), "telegram_app_link": APP_LINK, **overrides}
    )
    token = app_settings.bot_token.get_secret_value()
    async with serve(app_settings, db, redis) as (base, app):
        await asyncio.wait_for(app[LIVE_HUB].subscribed.wait(), 10)
        yield Site(base, app, token=token)


@asynccontextmanager
async def new_tab(browser: Browser, **options: Any) -> AsyncIterator[tuple[Page, Console]]:
    """A tab in a fresh browser context (`options`: Playwright's `new_context` ones), whose
    console errors, uncaught exceptions and Telegram bridge calls are recorded."""
    context = await browser.new_context(**options)
    tab = await context.new_page()
    console = Console()
    tab.on("console", console.on_console)
    tab.on("pageerror", console.on_error)
    try:
        yield tab, console
    finally:
        await context.close()


@pytest.fixture
async def site(settings, db, redis, names) -> AsyncIterator[Site]:
    await seed(db, redis, names, utcnow())
    await set_tier(db, USER, "pro")
    async with open_site(settings, db, redis) as opened:
        yield opened


@pytest.fixture
async def page(browser: Browser, site: Site) -> AsyncIterator[tuple[Page, Console]]:
    async with new_tab(browser, viewport=PHONE, device_scale_factor=2, has_touch=True) as opened:
        yield opened


async def screenshot(tab: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


async def first_candles(tab: Page) -> None:
    """The chart page marks its box not busy once the first candles are drawn."""
    await tab.locator("#chart[aria-busy='false']").wait_for(timeout=20_000)
