"""The Mini App's server-rendered pages through real HTTP: every page, its language from the
same catalogs as the bot, the chart's symbol handling, the CSP-friendly markup, static assets."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.i18n import create_i18n
from tests.browser_harness import ensure_assets, utcnow
from tests.miniapp_harness import BOT_TOKEN, add_minutes, add_symbols
from webapp.app import create_app

PAGES = ("/", "/markets", "/chart/BTCUSDT", "/watchlist", "/settings", "/plans")


@pytest.fixture
async def client(settings, db, redis):
    ensure_assets()
    await add_symbols(db, ["BTCUSDT", "ETHUSDT"])
    app_settings = settings.model_copy(update={"bot_token": SecretStr(BOT_TOKEN)})
    async with TestClient(TestServer(create_app(app_settings, pool=db, redis=redis))) as client:
        yield client


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_is_html_with_its_module_and_no_inline_script(client: TestClient, path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = await response.text()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    for attributes, body in scripts:  # CSP: script-src 'self', so code only from files
        assert 'type="module" src="/static/dist/' in attributes or 'type="application/json"' in attributes
        assert 'src="' in attributes or body.strip().startswith("{")
    assert BOT_TOKEN not in html and BOT_TOKEN.split(":")[1] not in html


async def test_page_language_follows_the_query_the_cookie_then_the_browser(client: TestClient) -> None:
    russian = await client.get("/markets", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"})
    assert russian.headers["Content-Language"] == "ru"
    assert "Рынки" in await russian.text()
    turkish = await client.get("/markets", cookies={"volspike_lang": "tr"}, headers={"Accept-Language": "ru"})
    assert "Piyasalar" in await turkish.text()
    spanish = await client.get("/markets?lang=es", cookies={"volspike_lang": "tr"})
    assert '<html lang="es"' in await spanish.text()
    unknown = await client.get("/markets", headers={"Accept-Language": "pt-BR"})
    assert unknown.headers["Content-Language"] == "en"


async def test_page_texts_for_the_scripts_are_translated_too(client: TestClient) -> None:
    html = await (await client.get("/?lang=uk")).text()
    data = re.search(r'<script type="application/json" id="texts">(.*?)</script>', html, re.S)
    assert data is not None
    texts = json.loads(data.group(1))
    assert texts["typeSpike"] == create_i18n().gettext("Volume spike", locale="uk") != "Volume spike"
    assert "{minutes}" in texts["delayNote"]  # the script fills the placeholder in


async def test_a_chart_symbol_is_resolved_like_the_bot_resolves_it(client: TestClient) -> None:
    response = await client.get("/chart/btc", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/chart/BTCUSDT?interval=1h"
    wrong_interval = await client.get("/chart/ETHUSDT?interval=7m", allow_redirects=False)
    assert wrong_interval.headers["Location"] == "/chart/ETHUSDT?interval=1h"
    unknown = await client.get("/chart/NOPECOIN")
    assert unknown.status == 404
    assert "Unknown symbol NOPECOIN." in await unknown.text()


async def test_the_chart_page_carries_its_first_candle_answers_inline(client: TestClient, db) -> None:
    await add_minutes(db, "BTCUSDT", utcnow() - timedelta(hours=2), 120)
    html = await (await client.get("/chart/BTCUSDT?interval=15m")).text()
    inline = re.search(r'<script type="application/json" id="first-candles">(.*?)</script>', html, re.S)
    assert inline is not None
    answers = orjson.loads(inline.group(1))
    assert list(answers) == [  # the URLs chart.js asks for first, in its parameter order
        "/api/candles?symbol=BTCUSDT&interval=15m&limit=300",
        "/api/candles?symbol=BTCUSDT&interval=1m&limit=3",
        "/api/candles?symbol=BTCUSDT&interval=1h&limit=2",
    ]
    for url, answer in answers.items():
        assert answer["candles"] and answer == await (await client.get(url)).json()  # the API's answer
    assert '<link rel="preload" href="/api/candles' not in html  # nothing left to fetch first


async def test_bundles_are_served_precompressed_and_versioned(client: TestClient) -> None:
    html = await (await client.get("/chart/BTCUSDT")).text()
    src = re.search(r'<script type="module" src="(/static/dist/chart\.js\?v=[0-9a-f]{10})"', html)
    assert src is not None
    response = await client.get(src.group(1), headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert int(response.headers["Content-Length"]) < 100_000
    notice = await client.get("/static/dist/NOTICE-lightweight-charts.txt")
    assert "TradingView" in await notice.text()
