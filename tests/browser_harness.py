"""The real webapp on a free port with seeded candles, alerts and market state, and Debian's
Chromium for Playwright: shared by the browser tests and bench/miniapp_page.py."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from core.alerts import AlertType
from core.redis_names import RedisNames
from core.settings import Settings
from db.live_state import LiveState
from db.partitions import ensure_partitions
from tests.miniapp_harness import add_alert, add_symbols, sign_init_data
from webapp.app import create_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
DIST = ROOT / "webapp" / "static" / "dist"
ARTIFACTS = ROOT / ".artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}

# Telegram's default themes (what tgWebAppThemeParams carries on Android).
LIGHT_THEME = {
    "bg_color": "#ffffff",
    "text_color": "#000000",
    "hint_color": "#707579",
    "link_color": "#3390ec",
    "button_color": "#3390ec",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#f4f4f5",
    "header_bg_color": "#ffffff",
    "accent_text_color": "#3390ec",
    "section_bg_color": "#ffffff",
    "section_header_text_color": "#3390ec",
    "subtitle_text_color": "#707579",
    "destructive_text_color": "#e53935",
}
DARK_THEME = {
    "bg_color": "#212121",
    "text_color": "#ffffff",
    "hint_color": "#aaaaaa",
    "link_color": "#8774e1",
    "button_color": "#8774e1",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#0f0f0f",
    "header_bg_color": "#212121",
    "accent_text_color": "#8774e1",
    "section_bg_color": "#212121",
    "section_header_text_color": "#aaaaaa",
    "subtitle_text_color": "#aaaaaa",
    "destructive_text_color": "#e53935",
}

MAJORS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT")


def symbols_for(count: int) -> list[str]:
    """The majors, then made-up listings up to `count` symbols (the markets table's size)."""
    extra = [f"C{i:03d}USDT" for i in range(max(0, count - len(MAJORS)))]
    return [*MAJORS, *extra][:count]


def browser_available() -> bool:
    """Debian's Chromium, installed through scripts/frontend.sh ensure_chromium when missing."""
    if not CHROMIUM.exists():
        subprocess.run(
            ["bash", "-c", "source scripts/lib.sh && ensure_chromium"], cwd=ROOT, check=False, timeout=900
        )
    return CHROMIUM.exists()


def ensure_assets() -> None:
    """The bundled browser modules (scripts/frontend.sh build_assets; a no-op when current)."""
    subprocess.run(["bash", "-c", "source scripts/lib.sh && build_assets"], cwd=ROOT, check=True, timeout=600)


def telegram_url(
    base: str, path: str, init_data: str, theme: dict[str, str], platform: str = "android"
) -> str:
    """`path` opened as Telegram opens a Mini App: launch parameters in the URL fragment."""
    params = {
        "tgWebAppData": init_data,
        "tgWebAppVersion": "8.0",
        "tgWebAppPlatform": platform,
        "tgWebAppThemeParams": json.dumps(theme, separators=(",", ":")),
    }
    fragment = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return f"{base}{path}#{fragment}"


def signed_init_data(
    token: str, user_id: int, now: datetime, *, language: str = "en", start_param: str | None = None
) -> str:
    user = {"id": user_id, "first_name": "Ada", "language_code": language, "allows_write_to_pm": True}
    fields = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(user, separators=(",", ":")),
        "auth_date": str(int(now.timestamp())),
    }
    if start_param:
        fields["start_param"] = start_param
    return sign_init_data(fields, token)


async def seed_candles(pool: asyncpg.Pool, symbol: str, end: datetime, minutes: int, base: float) -> None:
    """`minutes` closed 1m candles up to `end`: a gentle wave, with a volume surge this hour."""
    start = end - timedelta(minutes=minutes)
    await ensure_partitions(pool, start.date() - timedelta(days=1), end.date() + timedelta(days=1))
    rows = []
    price = base
    this_hour = end.replace(minute=0, second=0, microsecond=0)
    for i in range(minutes):
        at = start + timedelta(minutes=i)
        drift = math.sin(i / 45) * base * 0.0015 + math.sin(i / 7) * base * 0.0004
        o = price
        c = base + drift + (i % 5 - 2) * base * 0.0001
        h = max(o, c) + base * 0.0003
        low = min(o, c) - base * 0.0003
        quote_volume = (4.0 if at >= this_hour else 1.0) * base * (50 + (i * 37) % 40)
        rows.append(
            (
                symbol,
                at,
                o,
                h,
                low,
                c,
                quote_volume / c,
                quote_volume,
                100,
                quote_volume / c / 2,
                quote_volume / 2,
            )
        )
        price = c
    await pool.executemany(
        "INSERT INTO candles_1m VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
        rows,
    )


async def seed(
    pool: asyncpg.Pool, redis: Redis, names: RedisNames, now: datetime, *, symbols: int = 40
) -> None:
    """A market as ingest leaves it: symbols, BTC and ETH candles, alerts, the live state."""
    universe = symbols_for(symbols)
    await add_symbols(pool, universe)
    end = now.replace(second=0, microsecond=0)
    await seed_candles(pool, "BTCUSDT", end, 26 * 60, 97_000.0)
    await seed_candles(pool, "ETHUSDT", end, 3 * 60, 3_500.0)
    await add_alert(pool, "BTCUSDT", now - timedelta(minutes=40), ratio=3.4)
    await add_alert(pool, "ETHUSDT", now - timedelta(minutes=25), ratio=4.1)
    await add_alert(pool, "BTCUSDT", now - timedelta(hours=3), ratio=5.2)
    await add_alert(pool, "SOLUSDT", now - timedelta(minutes=3), ratio=3.1)  # inside the free delay
    await add_alert(pool, "BTCUSDT", now - timedelta(minutes=30), AlertType.HALF_UPDATE, ratio=3.9)
    live = LiveState(redis, names)
    for i, symbol in enumerate(universe):
        price = {"BTCUSDT": 97_000.0, "ETHUSDT": 3_500.0, "SOLUSDT": 180.0}.get(symbol, 0.5 + i * 1.37)
        live.set_price(symbol, price, int(now.timestamp() * 1000))
        live.set_24h(symbol, ((i * 7) % 19 - 9) / 2, 1e8 + i * 1e6)
        live.set_funding(symbol, ((i % 9) - 4) / 100_000)
    await live.flush(force=True)
    for i, symbol in enumerate(universe):  # hour volumes and ratios as the detector reports them
        raw = await redis.hget(names.market, symbol)
        entry = json.loads(raw) if raw else {}
        entry.update({"hourVolume": 1e6 * (1 + (i * 13) % 50), "prevHourVolume": 1e6 * (1 + (i * 7) % 20)})
        entry["ratio"] = round(entry["hourVolume"] / entry["prevHourVolume"], 4)
        await redis.hset(names.market, symbol, json.dumps(entry))


@asynccontextmanager
async def serve(
    settings: Settings, pool: asyncpg.Pool, redis: Redis
) -> AsyncIterator[tuple[str, web.Application]]:
    """The real webapp on 127.0.0.1 and a free port; yields its base URL and the app."""
    app = create_app(settings, pool=pool, redis=redis)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


def utcnow() -> datetime:
    return datetime.now(UTC)
