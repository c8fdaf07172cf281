"""Every page fits a phone and reads in both themes: axe-core (from npm, through
webapp/frontend/package-lock.json) finds no serious or critical violation, every interactive
element is at least 44×44 px, nothing runs past a 360 px screen or is cut short, and the tab, chip
and timeframe labels stay on one line in Russian. Inside the Telegram emulation (elite) and in the
public view, light and dark. The axe and language checks save screenshots in .artifacts/browser/
(fit-<page>-<view>-<theme>-360.png, fit-<page>-<language>-360.png; desktop: test_browser_desktop.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.browser_harness import DARK_THEME, LIGHT_THEME, ROOT, browser_available
from tests.miniapp_controls import INTERACTIVE, PAGES

if not browser_available():
    pytest.skip("Debian's /usr/bin/chromium is absent and could not be installed", allow_module_level=True)

from playwright.async_api import Browser, Page

from tests.miniapp_browser import USER, Console, Site, browser, new_tab, screenshot  # noqa: F401
from tests.test_browser_controls import READY, site  # noqa: F401 (the elite site of the control table)

AXE = ROOT / "webapp" / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
NARROW = {"width": 360, "height": 740}
THEMES = {"light": LIGHT_THEME, "dark": DARK_THEME}


@pytest.fixture
async def narrow(browser: Browser, site: Site) -> AsyncIterator[tuple[Page, Console]]:
    """A 360 px phone with touch; the page's CSP is bypassed so axe-core can be injected."""
    async with new_tab(
        browser, viewport=NARROW, device_scale_factor=2, has_touch=True, bypass_csp=True
    ) as opened:
        yield opened


async def open_page(tab: Page, site: Site, name: str, view: str, theme: str, language: str = "en") -> None:
    path = PAGES[name]
    if view == "tg":
        url = site.tg(path, theme=THEMES[theme], language=language)
    else:
        await tab.emulate_media(color_scheme=theme)  # the public view follows the system's theme
        url = site.base + path
    await tab.goto(url)
    await tab.locator(READY[name]).first.wait_for(state="attached", timeout=20_000)
    await tab.wait_for_load_state("networkidle")
    await tab.evaluate("document.fonts.ready")


AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes
      .map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').split('\\n')[1])
      .join(' | ')}`);
}"""


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("view", ["tg", "public"])
@pytest.mark.parametrize("name", list(PAGES))
async def test_axe_finds_no_serious_violation(narrow, site: Site, name: str, view: str, theme: str) -> None:
    tab, _ = narrow
    await open_page(tab, site, name, view, theme)
    await tab.add_script_tag(path=str(AXE))
    violations = await tab.evaluate(AXE_RUN)
    await screenshot(tab, f"fit-{name}-{view}-{theme}-360")
    assert violations == []


SMALL_TARGETS = """(interactive) => [...document.querySelectorAll(interactive)]
  .filter((node) => node.checkVisibility({ checkVisibilityCSS: true }))
  .map((node) => ({ node, box: node.getBoundingClientRect() }))
  .filter(({ box }) => box.width < 44 || box.height < 44)
  .map(({ node, box }) =>
    `${node.outerHTML.slice(0, 90)} ${Math.round(box.width)}×${Math.round(box.height)}`)"""

OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (node) => {
    for (let p = node.parentElement; p; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (['auto', 'scroll'].includes(style.overflowX) && p.scrollWidth > p.clientWidth) return true;
    }
    return false;
  };
  const out = [];
  const page = document.documentElement.scrollWidth;
  if (page > width) out.push(`page ${page} px`);
  for (const node of document.body.querySelectorAll('*')) {
    if (!node.checkVisibility()) continue;
    const box = node.getBoundingClientRect();
    const outside = box.right > width + 0.5 || box.left < -0.5;
    if (outside && !scrolls(node)) out.push(`${node.outerHTML.slice(0, 80)} ${box.left}..${box.right}`);
    const style = getComputedStyle(node);
    const cut = style.textOverflow === 'ellipsis' && node.scrollWidth > node.clientWidth + 1;
    if (cut) out.push(`cut: ${node.outerHTML.slice(0, 80)}`);
    // A button squeezed narrower than its own label (a flex item shrunk below its text).
    const squeezed = node.tagName === 'BUTTON' && node.scrollWidth > node.clientWidth + 1;
    if (squeezed) out.push(`squeezed: ${node.outerHTML.slice(0, 80)} ${node.scrollWidth} px`);
  }
  return out;
}"""

WRAPPED = """(selector) => [...document.querySelectorAll(selector)]
  .filter((node) => node.checkVisibility())
  .filter((node) => {
    const range = document.createRange();
    range.selectNodeContents(node);
    const lines = [...range.getClientRects()].filter((r) => r.width > 0);
    const tops = new Set(lines.map((r) => Math.round(r.top)));
    return tops.size > 1;
  })
  .map((node) => node.textContent.trim())"""

LABELS = ".tabbar .label, .chips button, #timeframes button, .m-cols button"


@pytest.mark.parametrize("view", ["tg", "public"])
@pytest.mark.parametrize("name", list(PAGES))
async def test_every_control_is_a_44px_target_and_nothing_overflows_360px(
    narrow, site: Site, name: str, view: str
) -> None:
    tab, _ = narrow
    await open_page(tab, site, name, view, "light")
    small = await tab.evaluate(SMALL_TARGETS, INTERACTIVE)
    assert not small, "\n".join(small)
    overflowing = await tab.evaluate(OVERFLOW)
    assert not overflowing, "\n".join(overflowing)


@pytest.mark.parametrize("language", ["ru", "uk", "es", "tr"])
@pytest.mark.parametrize("name", list(PAGES))
async def test_labels_stay_on_one_line_in_every_language(
    narrow, site: Site, db, name: str, language: str
) -> None:
    await db.execute("UPDATE users SET language = $2 WHERE id = $1", USER, language)  # the bot language
    tab, _ = narrow
    await open_page(tab, site, name, "tg", "light", language)
    await tab.wait_for_function(f"document.documentElement.lang === '{language}'")  # one reload into it
    await tab.locator(READY[name]).first.wait_for(state="attached", timeout=20_000)
    await tab.wait_for_load_state("networkidle")
    assert await tab.evaluate(WRAPPED, LABELS) == []
    assert await tab.evaluate(OVERFLOW) == []
    await screenshot(tab, f"fit-{name}-{language}-360")
