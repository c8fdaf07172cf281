"""Which contracts ingest follows, and the `symbols` table kept in step with exchangeInfo."""

from __future__ import annotations

import asyncpg

from db import symbols as symbols_db
from ingest.binance_rest import BinanceRest
from ingest.streams import kline_stream, stream_url
from ingest.universe import UniverseRefresher, diff_universe, select_universe
from simulator.config import SimConfig
from simulator.payloads import exchange_info
from simulator.server import SimServer
from simulator.universe import build_universe

NOW_MS = 1_780_000_000_000
PERPETUAL_DELIVERY_MS = 4133404800000


def _info(count: int = 5) -> dict[str, object]:
    return exchange_info(build_universe(3, count, NOW_MS), NOW_MS, 2400)


def _entry(symbol: str, **fields: object) -> dict[str, object]:
    base = {
        "symbol": symbol,
        "baseAsset": symbol.removesuffix("USDT"),
        "quoteAsset": "USDT",
        "contractType": "PERPETUAL",
        "status": "TRADING",
        "deliveryDate": PERPETUAL_DELIVERY_MS,
        "onboardDate": 1569398400000,
        "pricePrecision": 2,
    }
    base.update(fields)
    return base


def test_only_trading_usdt_perpetuals_are_followed() -> None:
    selected = select_universe(_info(), include_tradfi=False)

    assert "BTCUSDT" in selected and "ETHUSDT" in selected
    assert "BTCUSDT_261225" not in selected  # quarterly
    assert "BTCUSDC" not in selected  # USDC-quoted
    assert "LOOMUSDT" not in selected  # SETTLING
    assert "XAUUSDT" not in selected  # TradFi, off by default
    assert "币安人生USDT" in selected  # non-ASCII names are ordinary symbols
    assert selected["BTCUSDT"].base_asset == "BTC"


def test_tradfi_perpetuals_are_followed_when_enabled() -> None:
    selected = select_universe(_info(), include_tradfi=True)

    assert "XAUUSDT" in selected
    assert selected["XAUUSDT"].contract_type == "TRADIFI_PERPETUAL"
    assert "BTCUSDT_261225" not in selected


def test_perpetual_with_delivery_date_moved_near_is_dropped_as_delisted() -> None:
    info = {
        "serverTime": NOW_MS,
        "symbols": [
            _entry("AAAUSDT"),
            _entry("BBBUSDT", deliveryDate=NOW_MS + 10 * 60_000),  # delisting in 10 minutes
            _entry("CCCUSDT", deliveryDate=NOW_MS + 5 * 86_400_000),  # announced for next week
        ],
    }

    selected = select_universe(info, include_tradfi=False)

    assert sorted(selected) == ["AAAUSDT", "CCCUSDT"]


def test_entries_missing_fields_are_skipped_not_fatal() -> None:
    info = {"symbols": [_entry("AAAUSDT"), {"symbol": "BROKEN"}, "nonsense", _entry("BBBUSDT", status=None)]}

    assert list(select_universe(info, include_tradfi=False)) == ["AAAUSDT"]


def test_a_symbols_price_decimals_come_from_its_tick_size_not_price_precision() -> None:
    """Binance's BTCUSDT: pricePrecision 2, PRICE_FILTER tickSize 0.10: prices read 97,000.1."""
    tick = {"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764", "tickSize": "0.10"}
    lot = {"filterType": "LOT_SIZE", "stepSize": "0.001"}
    info = {
        "symbols": [
            _entry("BTCUSDT", filters=[lot, tick]),
            _entry("PEPEUSDT", pricePrecision=7, filters=[{**tick, "tickSize": "0.0000001"}]),
            _entry("ODDUSDT", pricePrecision=3, filters=[{**tick, "tickSize": "not a number"}]),
            _entry("BAREUSDT", pricePrecision=4),
        ]
    }
    selected = select_universe(info, include_tradfi=False)
    decimals = {symbol: s.price_precision for symbol, s in selected.items()}
    assert decimals == {"BTCUSDT": 1, "PEPEUSDT": 7, "ODDUSDT": 3, "BAREUSDT": 4}


def test_diff_reports_listings_and_delistings() -> None:
    old = select_universe({"symbols": [_entry("AAAUSDT"), _entry("BBBUSDT")]}, include_tradfi=False)
    new = select_universe(
        {"symbols": [_entry("AAAUSDT"), _entry("BBBUSDT", status="SETTLING"), _entry("CCCUSDT")]},
        include_tradfi=False,
    )

    change = diff_universe(old, new)

    assert change.added == ("CCCUSDT",)
    assert change.removed == ("BBBUSDT",)
    assert change.changed


def test_non_ascii_symbol_stream_name_is_percent_encoded_in_the_url() -> None:
    stream = kline_stream("币安人生USDT")
    url = stream_url("ws://127.0.0.1:1", [stream, "btcusdt@kline_1m", "!markPrice@arr@1s"])

    assert stream == "币安人生usdt@kline_1m"
    assert url.isascii()
    assert url.startswith("ws://127.0.0.1:1/market/stream?streams=")
    assert "%E5%B8%81%E5%AE%89%E4%BA%BA%E7%94%9Fusdt@kline_1m/btcusdt@kline_1m/!markPrice@arr@1s" in url


async def test_refresher_upserts_symbols_and_marks_delisted_inactive(db: asyncpg.Pool) -> None:
    async with SimServer(SimConfig(symbols=6, seed=5)) as sim, BinanceRest(sim.rest_url) as rest:
        refresher = UniverseRefresher(rest, db, include_tradfi=False)
        first = await refresher.refresh()
        assert "BTCUSDT" in first.added and "币安人生USDT" in first.added
        assert set(await symbols_db.active_symbols(db)) == set(first.current)

        sim.delist_symbol("ETHUSDT")
        sim.list_symbol("NEWUSDT")
        second = await refresher.refresh()

        assert second.added == ("NEWUSDT",)
        assert second.removed == ("ETHUSDT",)
        row = await db.fetchrow("SELECT active, status FROM symbols WHERE symbol = 'ETHUSDT'")
        assert row is not None and row["active"] is False
        quarterly = await db.fetchrow("SELECT active FROM symbols WHERE symbol = 'BTCUSDT_261225'")
        assert quarterly is not None and quarterly["active"] is False
        assert "NEWUSDT" in await symbols_db.active_symbols(db)
