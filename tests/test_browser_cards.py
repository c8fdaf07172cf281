"""The feed's alert cards as a trader reads them on a phone inside the Telegram emulation: a spike
with its updates on one card, the move since the alert (live for elite), the hour's sparkline,
the time that reads in full on a tap, previous-hour volume, the [SIMULATED] mark, the skeleton
while loading, Try again after an error, and the refresh at the tier's pace."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from core.alerts import Alert, AlertType
from core.number_format import format_usd
from db import user_settings
from db.alerts import insert_alert
from db.live_state import LiveState
from db.publisher import AlertPublisher
from ingest.candle_feed import CandleFeed
from tests.browser_harness import browser_available, utcnow
from tests.miniapp_harness import add_alert, set_tier
from webapp.ws import LIVE_HUB

if not browser_available():
    pytest.skip("Debian's /usr/bin/chromium is absent and could not be installed", allow_module_level=True)

from playwright.async_api import Route, expect

from tests.miniapp_browser import USER, Site, browser, page, screenshot, site  # noqa: F401
from tests.test_browser_miniapp import live_kline, until

FITS = """(card) => [...card.querySelectorAll('*')]
  .every((node) => node.getBoundingClientRect().right <= card.getBoundingClientRect().right + 0.5)"""


def card(tab, alert_id: int):
    return tab.locator(f".alert-card[data-id='{alert_id}']")


async def test_a_spike_and_its_updates_are_one_card_with_the_ratio_change(page, site: Site, db) -> None:
    await set_tier(db, USER, "elite")
    hour = (utcnow() - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    spike = await add_alert(db, "XRPUSDT", hour + timedelta(minutes=10), ratio=3.52)
    await add_alert(db, "XRPUSDT", hour + timedelta(minutes=30), AlertType.HALF_UPDATE, ratio=5.1)
    await add_alert(db, "XRPUSDT", hour + timedelta(minutes=59), AlertType.FULL_UPDATE, ratio=6.89)
    doge = await add_alert(db, "DOGEUSDT", hour + timedelta(minutes=20), ratio=3.2)  # between them
    tab, console = page
    await tab.goto(site.tg("/"))
    xrp = card(tab, spike)
    await xrp.wait_for()
    # One card: the spike, its two updates under it, the ratio's path; no card of its own for either.
    await expect(tab.locator(".alert-card[data-symbol='XRPUSDT']")).to_have_count(1)
    await expect(xrp.locator(".ratio-path")).to_have_text("3.52× → 5.10× → 6.89×")
    await expect(xrp.locator(".update-row .badge")).to_have_text(["Half-hour update", "Hour-close update"])
    await expect(xrp.locator(".alert-head .badge")).to_have_text("Volume spike")
    # The spike keeps its place among the spikes: the later DOGE spike is above it, not buried.
    order = await tab.locator(".alert-card").evaluate_all("(cards) => cards.map((c) => Number(c.dataset.id))")
    assert order.index(doge) == order.index(spike) - 1
    await xrp.scroll_into_view_if_needed()
    await screenshot(tab, "feed-grouped-card")
    assert console.errors == []


async def test_a_live_update_joins_its_spikes_card(page, site: Site, db, redis, names) -> None:
    await set_tier(db, USER, "elite")
    sol = await db.fetchrow("SELECT id, hour_ts, detected_at FROM alerts WHERE symbol = 'SOLUSDT'")
    tab, console = page
    await tab.goto(site.tg("/"))
    sol_card = card(tab, sol["id"])
    await sol_card.wait_for()
    assert await sol_card.get_attribute("data-updates") == "0"
    hub = site.app[LIVE_HUB]
    await until(lambda: any(c.alerts for c in hub.clients))
    half = Alert(
        symbol="SOLUSDT",
        asset="SOL",
        alert_type=AlertType.HALF_UPDATE,
        hour=sol["hour_ts"],
        detected_at=sol["detected_at"] + timedelta(minutes=1),
        current_volume=9e6,
        previous_volume=1e6,
        ratio=9.0,
        price=181.0,
        funding_rate=0.0001,
    )
    assert await AlertPublisher(db, redis, names).emit(half) is not None
    await expect(sol_card).to_have_attribute("data-updates", "1")
    await expect(sol_card.locator(".ratio-path")).to_have_text("3.10× → 9.00×")
    await expect(tab.locator(".alert-card[data-symbol='SOLUSDT']")).to_have_count(1)
    assert console.errors == []


async def test_a_card_shows_the_move_since_the_alert_the_hours_sparkline_and_both_volumes(
    page, site: Site, db, redis, names
) -> None:
    old = await db.fetchrow(
        "SELECT id, hour_ts, previous_volume FROM alerts WHERE symbol = 'BTCUSDT' AND detected_at < $1",
        utcnow() - timedelta(hours=2),
    )
    stored = await db.fetchval(
        "SELECT count(*) FROM candles_1m WHERE symbol = 'BTCUSDT' AND open_time >= $1 AND open_time < $2",
        old["hour_ts"],
        old["hour_ts"] + timedelta(hours=1),
    )
    live = LiveState(redis, names)  # the price now as the Markets table has it (alert price $97,000)
    live.set_price("BTCUSDT", 98_940.0, int(utcnow().timestamp() * 1000))
    live.set_price("DOGEUSDT", 0.0951, int(utcnow().timestamp() * 1000))
    await live.flush(force=True)
    simulated = await insert_alert(
        db,
        Alert(
            symbol="DOGEUSDT",
            asset="DOGE",
            alert_type=AlertType.SPIKE,
            hour=(utcnow() - timedelta(minutes=10)).replace(minute=0, second=0, microsecond=0),
            detected_at=utcnow() - timedelta(minutes=10),
            current_volume=4e6,
            previous_volume=1e6,
            ratio=4.0,
            price=0.1,
            funding_rate=None,
            simulated=True,
        ),
    )
    tab, console = page
    await tab.goto(site.tg("/"))
    btc = card(tab, old["id"])
    await btc.wait_for()
    move = btc.locator(".alert-move")
    await expect(move).to_contain_text("+2.00% since the alert")
    # pro sees the Markets table's 5-minute snapshot: the price says when it was taken
    await expect(move.locator(".move-now")).to_have_text(
        re.compile(r" · \$98,940\.00 at \d{2}:\d{2}( [AP]M)?")
    )
    assert await move.locator("b.up").count() == 1
    spark = btc.locator("svg.spark")
    assert stored == 60 and await spark.get_attribute("data-points") == "60"
    assert await spark.get_attribute("aria-label")
    box = await spark.bounding_box()
    assert box is not None and box["width"] >= 80 and box["height"] >= 20
    previous = format_usd(old["previous_volume"])
    await expect(btc.locator(".figure.prev")).to_have_text(f"Previous hour{previous}")
    # The simulated alert says so on its card; a real one does not.
    assert simulated is not None
    await expect(card(tab, simulated).locator(".badge-sim")).to_have_text("[SIMULATED]")
    assert await btc.locator(".badge-sim").count() == 0
    # DOGE's price now is $0.0951: -4.90% since its simulated alert at $0.1.
    await expect(card(tab, simulated).locator(".alert-move")).to_contain_text("-4.90% since the alert")
    assert console.errors == []


async def test_the_time_reads_relative_and_in_full_in_the_users_zone_on_a_tap(page, site: Site, db) -> None:
    await user_settings.get(db, USER)
    await user_settings.set_timezone(db, USER, "Asia/Tokyo")
    eth = await db.fetchrow("SELECT id, detected_at FROM alerts WHERE symbol = 'ETHUSDT'")
    tab, console = page
    await tab.set_viewport_size({"width": 360, "height": 740})
    await tab.goto(site.tg("/"))
    when = card(tab, eth["id"]).locator(".alert-head .when")
    await when.wait_for()
    assert re.fullmatch(r"2[4-6] min\. ago", await when.inner_text())
    await when.tap()
    tokyo = eth["detected_at"].astimezone(ZoneInfo("Asia/Tokyo"))
    await expect(when).to_contain_text(f"{tokyo:%I:%M %p}")  # English reads the 12-hour clock
    await expect(when).to_contain_text("(Asia/Tokyo)")
    await expect(when).to_have_attribute("aria-pressed", "true")
    assert tab.url.split("#")[0] == f"{site.base}/"  # the tap read the time; it opened no chart
    assert await card(tab, eth["id"]).evaluate(FITS)  # the longer time wraps inside the card at 360 px
    await when.tap()
    await expect(when).to_have_text(re.compile(r"2[4-6] min\. ago"))
    assert console.errors == []


async def test_a_skeleton_while_loading_then_an_error_and_try_again(page, site: Site) -> None:
    tab, console = page
    release = asyncio.Event()

    async def broken(route: Route) -> None:
        await release.wait()
        await route.fulfill(status=503, json={"error": "unavailable", "detail": "database down"})

    await tab.route("**/api/alerts*", broken)
    await tab.goto(site.tg("/"))
    await expect(tab.locator(".skeleton-card").first).to_be_visible()
    assert await tab.locator("#alerts").get_attribute("aria-busy") == "true"
    release.set()
    await expect(tab.locator("#status")).to_have_text("The alerts could not be loaded.")
    retry = tab.locator("#retry")
    await expect(retry).to_be_visible()
    await expect(tab.locator(".skeleton-card")).to_have_count(0)
    await tab.unroute("**/api/alerts*")
    await retry.tap()
    await expect(tab.locator(".alert-card").first).to_be_visible()
    await expect(tab.locator("#status")).to_be_hidden()
    await expect(retry).to_be_hidden()
    # the page's own 503 is the only console error (the browser logs a failed resource load)
    assert all("503" in line for line in console.errors)


@pytest.mark.parametrize(("tier", "pace", "late"), [("free", 60, 16), ("pro", 20, 6)])
async def test_the_feed_refreshes_itself_at_its_tiers_pace(
    page, site: Site, db, tier: str, pace: int, late: int
) -> None:
    await set_tier(db, USER, tier)
    tab, console = page
    await tab.clock.install()
    await tab.goto(site.tg("/"))
    await tab.locator(".alert-card").first.wait_for()
    shown = await tab.locator(".alert-card").count()
    # A spike the tier may now see (past its delay) that the open page has not loaded.
    new = await add_alert(db, "XRPUSDT", utcnow() - timedelta(minutes=late), ratio=7.5)
    await tab.clock.run_for((pace - 2) * 1000)
    await asyncio.sleep(0.5)
    assert await tab.locator(".alert-card").count() == shown  # not before the pace
    await tab.clock.run_for(3000)
    await expect(card(tab, new)).to_be_visible()
    await expect(card(tab, new)).to_have_class(re.compile(r"\bfresh\b"))
    assert await tab.locator(".alert-card").count() == shown + 1
    assert console.errors == []


async def test_an_elite_card_follows_the_price_live(page, site: Site, db, redis, names) -> None:
    await set_tier(db, USER, "elite")
    old = await db.fetchval(
        "SELECT id FROM alerts WHERE symbol = 'BTCUSDT' AND detected_at < $1", utcnow() - timedelta(hours=2)
    )
    tab, console = page
    await tab.goto(site.tg("/"))
    move = card(tab, old).locator(".alert-move")
    await expect(move).to_contain_text("+0.00% since the alert")  # the table: $97,000 = the alert's
    hub = site.app[LIVE_HUB]
    await until(lambda: any("BTCUSDT" in c.symbols for c in hub.clients))
    feed = CandleFeed(redis, names)
    feed.update(live_kline("BTCUSDT", 95_060.0))
    assert await feed.flush() == 1
    await expect(move).to_contain_text("-2.00% since the alert")
    await expect(move.locator(".move-now")).to_have_text(" · now $95,060.00")  # elite: live, not a snapshot
    assert await move.locator("b.down").count() == 1
    assert console.errors == []
