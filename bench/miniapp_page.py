"""Mini App chart page benchmark: first-load transfer size and time to first candles.

    .venv/bin/python -m bench.miniapp_page [--runs 10] [--throttle 4]

Serves the real webapp (throw-away PostgreSQL database and Redis prefix, seeded with 26 h of
1m candles, alerts and the market state of 600 symbols) on a free loopback port and opens
`/chart/BTCUSDT` as Telegram opens it (signed initData in the URL fragment) in headless
Debian Chromium on a 390×844 phone viewport, each run in a fresh browser context (cold cache).

- transfer: the bytes on the wire of the first load (response headers + encoded bodies of the
  document, CSS, JS and API calls, as Chromium's network layer counts them); target < 300 KB.
- first candles: from navigation start until the chart's first frame with candles is painted
  (the page's `volspike:first-candles` performance mark), with the CPU slowed `--throttle`
  times through CDP `Emulation.setCPUThrottlingRate`; target < 1.5 s.
Environment: VOLSPIKE_BENCH_PG (admin URL, default postgresql://postgres@127.0.0.1:5432/postgres),
VOLSPIKE_BENCH_REDIS (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import asyncpg
from pydantic import SecretStr
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/miniapp_page.py` as well as `python -m bench.miniapp_page`
    sys.path.insert(0, str(ROOT))

from bench.rows import Row, Section  # noqa: E402
from db.migrate import migrate  # noqa: E402
from db.pool import create_pool  # noqa: E402
from tests.browser_harness import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    LIGHT_THEME,
    PHONE,
    browser_available,
    ensure_assets,
    seed,
    serve,
    signed_init_data,
    telegram_url,
    utcnow,
)
from tests.miniapp_harness import BOT_TOKEN, set_tier  # noqa: E402
from volspike.redis_names import RedisNames  # noqa: E402
from volspike.settings import load_settings  # noqa: E402

PG_ADMIN = os.environ.get("VOLSPIKE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("VOLSPIKE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
USER = 4242


def kind(url: str) -> str:
    if "/api/" in url:
        return "api"
    if "/static/" in url:
        return "static"
    return "document"


async def one_load(browser, url: str, throttle: float) -> tuple[dict[str, int], float]:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
    sizes: dict[str, int] = defaultdict(int)
    urls: dict[str, str] = {}

    def on_response(event: dict) -> None:
        urls[event["requestId"]] = event["response"]["url"]

    def on_finished(event: dict) -> None:
        url_of = urls.get(event["requestId"], "")
        sizes[kind(url_of)] += int(event["encodedDataLength"])

    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.loadingFinished", on_finished)
    await page.goto(url)
    await page.locator("#chart[aria-busy='false']").wait_for(timeout=30_000)
    first = await page.evaluate("performance.getEntriesByName('volspike:first-candles')[0].startTime")
    await page.wait_for_load_state("networkidle")
    await context.close()
    return dict(sizes), float(first)


async def main(runs: int, throttle: float) -> None:
    results = await measure(runs, throttle)
    if results is None:
        print("Debian's /usr/bin/chromium is absent and could not be installed")
        return
    sizes = results[0][0]
    total = sum(sizes.values())
    times = sorted(first for _, first in results)
    print(f"chart page /chart/BTCUSDT, {runs} cold loads, CPU throttled {throttle:g}×, 390×844, loopback\n")
    print(f"| {'figure':<44} | {'target':<9} | {'value':<22} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 24}|")
    label = "transfer on first load (all responses)"
    print(f"| {label:<44} | {'< 300 KB':<9} | {total / 1000:>8.1f} KB{'':<11} |")
    for part in ("document", "static", "api"):
        print(f"| {'  of which ' + part:<44} | {'':<9} | {sizes.get(part, 0) / 1000:>8.1f} KB{'':<11} |")
    p50 = statistics.median(times)
    line = f"p50 {p50 / 1000:.2f} s, max {times[-1] / 1000:.2f} s"
    print(f"| {'time to first candles drawn':<44} | {'< 1.5 s':<9} | {line:<22} |")


async def rows(runs: int = 10, throttle: float = 4.0) -> Section:
    """`volspike bench`'s rows: the chart page's first-load transfer and time to first candles."""
    results = await measure(runs, throttle)
    if results is None:
        why = "not measured: Debian's /usr/bin/chromium is absent"
        return Section(
            [
                Row("Mini App chart page: transfer on first load", None, "KB", "< 300", why),
                Row("Mini App chart page: time to first candles p50", None, "s", "< 1.5", why),
            ]
        )
    total = sum(results[0][0].values()) / 1000
    times = sorted(first / 1000 for _, first in results)
    p50 = statistics.median(times)
    how = f"{runs} cold loads, CPU throttled {throttle:g}x"
    return Section(
        [
            Row("Mini App chart page: transfer on first load", total, "KB", "< 300", how, total < 300),
            Row(
                "Mini App chart page: time to first candles p50",
                p50,
                "s",
                "< 1.5",
                f"{how}; max {times[-1]:.2f} s",
                p50 < 1.5,
            ),
        ],
        {"Mini App: first candles drawn": [t * 1000 for t in times]},
    )


async def measure(runs: int, throttle: float) -> list[tuple[dict[str, int], float]] | None:
    """[(bytes per kind, ms to first candles)] per cold load; None without Chromium."""
    if not browser_available():
        return None
    ensure_assets()
    from playwright.async_api import async_playwright

    name = f"volspike_bench_{uuid.uuid4().hex[:8]}"
    database_url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    prefix = f"vsbench:{uuid.uuid4().hex[:8]}:"
    await migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=10)
    redis = Redis.from_url(REDIS_URL)
    try:
        names = RedisNames(prefix)
        await seed(pool, redis, names, utcnow(), symbols=600)
        await set_tier(pool, USER, "pro")
        settings = load_settings(
            _env_file=None,
            database_url=database_url,
            redis_url=REDIS_URL,
            redis_prefix=prefix,
            bot_token=SecretStr(BOT_TOKEN),
            log_level="WARNING",
        )
        async with serve(settings, pool, redis) as (base, _app), async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            url = telegram_url(
                base, "/chart/BTCUSDT", signed_init_data(BOT_TOKEN, USER, utcnow()), LIGHT_THEME
            )
            await one_load(browser, url, throttle)  # warm the server (template and query caches)
            results = [await one_load(browser, url, throttle) for _ in range(runs)]
            await browser.close()
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await pool.close()
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await admin.close()

    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--throttle", type=float, default=4.0)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.throttle))
