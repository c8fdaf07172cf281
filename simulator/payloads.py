"""Binance's wire shapes: decimals as strings, exactly as the exchange formats them."""

from __future__ import annotations

from typing import Any

from .market import Candle, Market
from .universe import HOUR_MS, TRADING, SymbolInfo

JSON = dict[str, Any]

FUNDING_PERIOD_MS = 8 * HOUR_MS
ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]
TIME_IN_FORCE = ["GTC", "IOC", "FOK", "GTX", "GTD"]


def fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def kline_row(info: SymbolInfo, c: Candle) -> list[Any]:
    """One row of GET /fapi/v1/klines."""
    pp = info.price_precision
    qp = info.quantity_precision
    return [
        c.open_ms,
        f"{c.o:.{pp}f}",
        f"{c.h:.{pp}f}",
        f"{c.l:.{pp}f}",
        f"{c.c:.{pp}f}",
        f"{c.v:.{qp}f}",
        c.close_ms,
        f"{c.q:.{pp + qp}f}",
        c.n,
        f"{c.bv:.{qp}f}",
        f"{c.bq:.{pp + qp}f}",
        "0",
    ]


def kline_event(info: SymbolInfo, c: Candle, interval: str, closed: bool, event_ms: int) -> JSON:
    """The payload of ``<symbol>@kline_<interval>``."""
    pp = info.price_precision
    qp = info.quantity_precision
    return {
        "e": "kline",
        "E": event_ms,
        "s": info.symbol,
        "k": {
            "t": c.open_ms,
            "T": c.close_ms,
            "s": info.symbol,
            "i": interval,
            "f": c.first_id,
            "L": c.last_id,
            "o": f"{c.o:.{pp}f}",
            "c": f"{c.c:.{pp}f}",
            "h": f"{c.h:.{pp}f}",
            "l": f"{c.l:.{pp}f}",
            "v": f"{c.v:.{qp}f}",
            "n": c.n,
            "x": closed,
            "q": f"{c.q:.{pp + qp}f}",
            "V": f"{c.bv:.{qp}f}",
            "Q": f"{c.bq:.{pp + qp}f}",
            "B": "0",
        },
    }


def next_funding_ms(t_ms: int) -> int:
    return (t_ms // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS


def _is_perpetual(info: SymbolInfo) -> bool:
    return info.contract_type in ("PERPETUAL", "TRADIFI_PERPETUAL")


def mark_values(market: Market, info: SymbolInfo, t_ms: int) -> tuple[str, str, str, str, int]:
    """(mark price, index price, estimated settle price, funding rate, next funding time)."""
    price = market.last_price(info.symbol, t_ms)
    index = price * (1.0 - market.basis(info, t_ms))
    settle = (price + index) / 2.0
    if _is_perpetual(info):
        rate = f"{market.funding_rate(info, t_ms):.8f}"
        next_funding = next_funding_ms(t_ms)
    else:
        rate, next_funding = "", 0
    return f"{price:.8f}", f"{index:.8f}", f"{settle:.8f}", rate, next_funding


def mark_price_event(market: Market, info: SymbolInfo, t_ms: int) -> JSON:
    p, i, settle, r, next_funding = mark_values(market, info, t_ms)
    return {
        "e": "markPriceUpdate",
        "E": t_ms,
        "s": info.symbol,
        "p": p,
        "ap": p,
        "P": settle,
        "i": i,
        "r": r,
        "T": next_funding,
    }


def premium_index(market: Market, info: SymbolInfo, t_ms: int) -> JSON:
    p, i, settle, r, next_funding = mark_values(market, info, t_ms)
    return {
        "symbol": info.symbol,
        "markPrice": p,
        "indexPrice": i,
        "estimatedSettlePrice": settle,
        "lastFundingRate": r,
        "interestRate": "0.00010000" if _is_perpetual(info) else "",
        "nextFundingTime": next_funding,
        "time": t_ms,
    }


def open_interest(market: Market, info: SymbolInfo, t_ms: int) -> JSON:
    """`GET /fapi/v1/openInterest`: ``{"openInterest": "10659.509", "symbol": "BTCUSDT",
    "time": 1589437530011}``."""
    return {
        "openInterest": fmt(market.open_interest(info, t_ms), info.quantity_precision),
        "symbol": info.symbol,
        "time": t_ms,
    }


def open_interest_stat(market: Market, info: SymbolInfo, t_ms: int) -> JSON:
    """One row of `GET /futures/data/openInterestHist`: contracts and their value at ``t_ms``
    (a period boundary); Binance writes the sums as strings and the timestamp as a number."""
    contracts = market.open_interest(info, t_ms)
    return {
        "symbol": info.symbol,
        "sumOpenInterest": f"{contracts:.8f}",
        "sumOpenInterestValue": f"{contracts * market.last_price(info.symbol, t_ms):.8f}",
        "timestamp": t_ms,
    }


def ticker_24h(market: Market, info: SymbolInfo, now_ms: int) -> JSON:
    """24h rolling statistics, the aggregate of the sim's own 1m klines over the last 24 hours
    (``Market.rolling_24h``): open, high, low, last, volume, quote volume, trades and trade ids
    agree with what ``/fapi/v1/klines`` returns for the same minutes."""
    pp = info.price_precision
    qp = info.quantity_precision
    end = min(now_ms, info.delivery_ms - 1)
    day = market.rolling_24h(info.symbol, now_ms)
    if day is None:  # not trading in the window: Binance shows zeros
        last = market.last_price(info.symbol, end)
        day = Candle(end - 24 * HOUR_MS, end, last, last, last, last, 0.0, 0.0, 0, 0.0, 0.0, 0, -1)
    change = day.c - day.o
    return {
        "symbol": info.symbol,
        "priceChange": fmt(change, pp),
        "priceChangePercent": fmt(change / day.o * 100.0 if day.o else 0.0, 3),
        "weightedAvgPrice": fmt(day.q / day.v if day.v else day.c, pp),
        "lastPrice": fmt(day.c, pp),
        "lastQty": fmt(max(info.avg_trade_quote / day.c, 10.0**-qp), qp),
        "openPrice": fmt(day.o, pp),
        "highPrice": fmt(day.h, pp),
        "lowPrice": fmt(day.l, pp),
        "volume": fmt(day.v, qp),
        "quoteVolume": fmt(day.q, pp + qp),
        "openTime": day.open_ms,
        "closeTime": end,
        "firstId": day.first_id,
        "lastId": day.last_id,
        "count": day.n,
    }


def _filters(info: SymbolInfo) -> list[JSON]:
    pp = info.price_precision
    qp = info.quantity_precision
    tick = fmt(10.0**-pp, pp)
    step = fmt(10.0**-qp, qp) if qp else "1"
    return [
        {
            "minPrice": tick,
            "maxPrice": fmt(info.ref_price * 20, pp),
            "filterType": "PRICE_FILTER",
            "tickSize": tick,
        },
        {"stepSize": step, "filterType": "LOT_SIZE", "maxQty": "1000000000", "minQty": step},
        {"stepSize": step, "filterType": "MARKET_LOT_SIZE", "maxQty": "100000000", "minQty": step},
        {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
        {"limit": 10, "filterType": "MAX_NUM_ALGO_ORDERS"},
        {"notional": "5", "filterType": "MIN_NOTIONAL"},
        {
            "multiplierDown": "0.9500",
            "multiplierUp": "1.0500",
            "multiplierDecimal": "4",
            "filterType": "PERCENT_PRICE",
        },
    ]


def symbol_entry(info: SymbolInfo, now_ms: int) -> JSON:
    tradfi = info.contract_type == "TRADIFI_PERPETUAL"
    return {
        "symbol": info.symbol,
        "pair": info.pair,
        "contractType": info.contract_type,
        "deliveryDate": info.delivery_ms,
        "onboardDate": info.onboard_ms,
        "status": info.status(now_ms),
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": info.base,
        "quoteAsset": info.quote,
        "marginAsset": info.quote,
        "pricePrecision": info.price_precision,
        "quantityPrecision": info.quantity_precision,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COMMODITY" if tradfi else "COIN",
        "underlyingSubType": ["TradFi"] if tradfi else [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": _filters(info),
        "orderTypes": ORDER_TYPES,
        "timeInForce": TIME_IN_FORCE,
        "permissionSets": ["GRID", "COPY"],
    }


def exchange_info(symbols: list[SymbolInfo], now_ms: int, weight_limit: int) -> JSON:
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": weight_limit,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [
            {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"},
            {"asset": "USDC", "marginAvailable": True, "autoAssetExchange": "-10000"},
            {"asset": "BTC", "marginAvailable": True, "autoAssetExchange": "-0.10000000"},
        ],
        "symbols": [symbol_entry(info, now_ms) for info in symbols],
    }


def streams_status(info: SymbolInfo, now_ms: int) -> bool:
    """Whether the symbol's market streams carry data now."""
    return info.status(now_ms) == TRADING and info.trades_at(now_ms)
