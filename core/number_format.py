"""The figures' formats ($5.00B, 3.33×, $97,123.40, +0.0100%), the same in every language.

The rules' numbers live in `number_formats.json` beside this module, which the Mini App's
browser code (webapp/frontend/src/lib/format.js) reads too, so a figure the browser computes
(a live candle, a sorted market row) is written exactly as the bot writes it.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from core.resources import package_dir


@cache
def spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((package_dir("core") / "number_formats.json").read_text("utf-8"))
    return spec


def format_usd(value: float) -> str:
    """$5.00B, $350.12M, $3.00M, $950.00K, $12.34"""
    rule = spec()["usd"]
    for bound, suffix in rule["steps"]:
        if abs(value) >= bound:
            return f"{rule['prefix']}{value / bound:.{rule['decimals']}f}{suffix}"
    return f"{rule['prefix']}{value:.{rule['decimals']}f}"


def format_ratio(ratio: float) -> str:
    rule = spec()["ratio"]
    return f"{ratio:.{rule['decimals']}f}{rule['suffix']}"


def format_price(price: float) -> str:
    """Enough significant digits for both BTC (97,123.4) and PEPE (0.00001234)."""
    rule = spec()["price"]
    if price >= rule["grouped_from"]:
        return f"{rule['prefix']}{price:,.{rule['grouped_decimals']}f}"
    decimals = rule["plain_decimals"] if price >= rule["plain_from"] else rule["small_decimals"]
    digits: str = f"{price:.{decimals}f}".rstrip("0").rstrip(".")
    return f"{rule['prefix']}{digits or '0'}"


def format_funding(rate: float | None) -> str:
    rule = spec()["funding"]
    if rate is None:
        return str(rule["missing"])
    return f"{rate * rule['scale']:+.{rule['decimals']}f}{rule['suffix']}"


def format_change(pct: float) -> str:
    """A 24 h price change: +2.50%, -0.31%."""
    rule = spec()["change"]
    return f"{pct:+.{rule['decimals']}f}{rule['suffix']}"


def tick_decimals(tick_size: object) -> int | None:
    """The decimals a price of a symbol is written with: those of its exchangeInfo PRICE_FILTER
    `tickSize` ("0.10" → 1, "0.00001000" → 5, "1" → 0); None for anything that is not a
    positive decimal. Binance's `pricePrecision` is not the tick (BTCUSDT: 2 against 0.10)."""
    if not isinstance(tick_size, str):
        return None
    try:
        tick = Decimal(tick_size)
    except InvalidOperation:
        return None
    if not tick.is_finite() or tick <= 0:
        return None
    exponent = tick.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    return max(0, -exponent)
