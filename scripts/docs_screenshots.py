"""The README's Mini App screenshots (docs/images/), taken from the real webapp in Debian's Chromium.

    .venv/bin/python scripts/docs_screenshots.py [miniapp-feed] [miniapp-chart] [record] \
        [web-desktop] [miniapp-markets-dark]

A throw-away database (dropped at the end) and Redis prefix (deleted) hold a market as ingest leaves
it (tests/browser_harness.py `seed`) plus a few alerts with real-looking figures; an elite user opens
the feed and the BTC chart at phone size (390×844), as Telegram opens a Mini App. For `record`, a
month of SPIKEs with outcomes (tests/outcome_harness.py `seed_track_record`, deterministic) is added
and the public /record page is taken as a browser opens it. `web-desktop` is the public view's feed
in a 1280×800 desktop window (what VolSpike is, then the alerts, in one centred column);
`miniapp-markets-dark` is Markets inside Telegram's dark theme on a 360 px phone (two-line rows).
No names: every shot.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
from PIL import Image
from playwright.async_api import async_playwright
from pydantic import SecretStr
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.alerts import Alert, AlertType  # noqa: E402
from core.redis_names import RedisNames  # noqa: E402
from core.settings import load_settings  # noqa: E402
from db.alerts import insert_alert  # noqa: E402
from db.migrate import migrate  # noqa: E402
from db.pool import create_pool  # noqa: E402
from tests.browser_harness import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    DARK_THEME,
    LIGHT_THEME,
    PHONE,
    ensure_assets,
    seed,
    serve,
    signed_init_data,
    telegram_url,
    utcnow,
)
from tests.conftest import PG_ADMIN_URL, TEST_REDIS_URL  # noqa: E402
from tests.miniapp_harness import BOT_TOKEN, set_tier  # noqa: E402
from tests.outcome_harness import seed_track_record  # noqa: E402
from webapp.ws import LIVE_HUB  # noqa: E402

OUT = ROOT / "docs" / "images"
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 360, "height": 740}
USER = 1001
# symbol, minutes ago, type, hour volume, ratio, price, funding
ALERTS = [
    ("BTCUSDT", 41, AlertType.SPIKE, 5.0e9, 3.33, 97_123.40, 0.0001),
    ("ETHUSDT", 33, AlertType.SPIKE, 1.42e9, 4.12, 3_512.87, 0.000087),
    ("BTCUSDT", 28, AlertType.HALF_UPDATE, 6.1e9, 4.06, 97_310.10, 0.0001),
    ("SOLUSDT", 17, AlertType.SPIKE, 412e6, 5.27, 181.42, -0.000035),
    ("DOGEUSDT", 6, AlertType.SPIKE, 96.4e6, 3.81, 0.38215, 0.000112),
]


async def add_alerts(pool: asyncpg.Pool) -> None:
    now = utcnow()
    for symbol, ago, kind, volume, ratio, price, funding in ALERTS:
        at = now - timedelta(minutes=ago)
        alert = Alert(
            symbol=symbol,
            asset=symbol.removesuffix("USDT"),
            alert_type=kind,
            hour=at.replace(minute=0, second=0, microsecond=0),
            detected_at=at,
            current_volume=volume,
            previous_volume=volume / ratio,
            ratio=ratio,
            price=price,
            funding_rate=funding,
        )
        await insert_alert(pool, alert)


SHOTS = {
    "miniapp-feed": "/",
    "miniapp-chart": "/chart/BTCUSDT",
    "record": "/record",
    "web-desktop": "/",
    "miniapp-markets-dark": "/markets",
}
READY = {
    "miniapp-feed": ".alert-card",
    "miniapp-chart": "#chart[aria-busy='false']",
    "record": ".record-bar",
    "web-desktop": ".alert-card",
    "miniapp-markets-dark": ".m-row",
}
PUBLIC = {"record", "web-desktop"}  # taken as anyone opens them in a browser, not inside Telegram
VIEWPORTS = {"web-desktop": DESKTOP, "miniapp-markets-dark": NARROW}  # the others: PHONE
THEMES = {"miniapp-markets-dark": DARK_THEME}  # the others: LIGHT_THEME


async def main(names: list[str]) -> None:
    wanted = {name: SHOTS[name] for name in names or SHOTS}
    ensure_assets()
    name = f"volspike_shots_{uuid.uuid4().hex[:8]}"
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    prefix = f"vsshots:{name}:"
    settings = load_settings(
        _env_file=None,
        database_url=url,
        redis_url=TEST_REDIS_URL,
        redis_prefix=prefix,
        bot_token=SecretStr(BOT_TOKEN),
        telegram_api_url="http://127.0.0.1:9",
        binance_rest_url="http://127.0.0.1:9",
        binance_ws_url="ws://127.0.0.1:9",
        webapp_url="https://volspike.test",
        telegram_app_link="https://t.me/VolSpikeBot/app",  # the public view's Open in Telegram
        admin_ids="",
    )
    await migrate(url)
    pool = await create_pool(url, min_size=1, max_size=5)
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        await seed(pool, redis, RedisNames(prefix), utcnow())
        await pool.execute("DELETE FROM alerts")  # the harness's test alerts; real-looking ones instead
        await add_alerts(pool)
        await set_tier(pool, USER, "elite")
        if "record" in wanted:
            await seed_track_record(pool, utcnow(), 160)
        async with serve(settings, pool, redis) as (base, app), async_playwright() as playwright:
            await asyncio.wait_for(app[LIVE_HUB].subscribed.wait(), 10)
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for shot, path in wanted.items():
                viewport = VIEWPORTS.get(shot, PHONE)
                context = await browser.new_context(viewport=viewport, device_scale_factor=1)
                tab = await context.new_page()
                init_data = signed_init_data(BOT_TOKEN, USER, utcnow())
                theme = THEMES.get(shot, LIGHT_THEME)
                await tab.goto(
                    f"{base}{path}" if shot in PUBLIC else telegram_url(base, path, init_data, theme)
                )
                await tab.locator(READY[shot]).first.wait_for(timeout=20_000)
                await tab.wait_for_timeout(500)
                png = OUT / f"{shot}.png"
                await tab.screenshot(path=str(png))
                Image.open(png).quantize(colors=128).save(png, optimize=True)  # a few tens of KB
                await context.close()
            await browser.close()
    finally:
        await pool.close()
        async for key in redis.scan_iter(match=f"{prefix}*"):
            await redis.delete(key)
        await redis.aclose()
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
