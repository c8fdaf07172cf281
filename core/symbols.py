"""Turning what users type (`BTC`, `btc`, `BTCUSDT`, `$eth`) into exchange symbols, with suggestions.

The bot's one symbol rule lives here, used by commands and callback data alike: a symbol is
whatever the universe (the `symbols` table, filled from exchangeInfo) holds, in any script
(`我踏马来了USDT` trades on Binance), as long as a button carrying it fits Telegram's
callback_data limit of 64 bytes of UTF-8. Shape checks only bound the size; membership in the
universe decides.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_QUOTE = "USDT"
MAX_SUGGESTIONS = 3
CALLBACK_DATA_BYTES = 64  # Bot API: InlineKeyboardButton.callback_data is 1-64 bytes
MAX_SYMBOL_BYTES = 48  # leaves room for a callback prefix such as `mute:`
_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True, slots=True)
class Resolution:
    symbols: list[str] = field(default_factory=list)  # resolved, de-duplicated, in input order
    unknown: dict[str, list[str]] = field(default_factory=dict)  # as typed -> suggestions


def split_args(text: str | None) -> list[str]:
    return [part for part in _SPLIT.split(text or "") if part]


def normalize(token: str) -> str:
    return token.strip().lstrip("$#").upper()


def is_symbol_shaped(name: str) -> bool:
    """Could `name` be a symbol at all: printable, no spaces, at most MAX_SYMBOL_BYTES of UTF-8."""
    return (
        0 < len(name.encode()) <= MAX_SYMBOL_BYTES
        and name.isprintable()
        and not any(c.isspace() for c in name)
    )


def symbol_callback(prefix: str, symbol: str) -> str | None:
    """Callback data `<prefix><symbol>`, or None when it would not fit Telegram's 64 bytes."""
    data = f"{prefix}{symbol}"
    return data if is_symbol_shaped(symbol) and len(data.encode()) <= CALLBACK_DATA_BYTES else None


def symbol_from_callback(prefix: str, data: str | None) -> str | None:
    """The symbol of callback data made by `symbol_callback`, or None when it is not shaped like
    one (whether the universe holds it is for the caller to check)."""
    if data is None or not data.startswith(prefix):
        return None
    symbol = data.removeprefix(prefix)
    return symbol if is_symbol_shaped(symbol) else None


def resolve_one(token: str, universe: Mapping[str, str]) -> str | None:
    """`universe` maps symbol -> base asset. `BTC` and `BTCUSDT` both give `BTCUSDT`."""
    name = normalize(token)
    if not is_symbol_shaped(name):
        return None
    if name in universe:
        return name
    if name + DEFAULT_QUOTE in universe:
        return name + DEFAULT_QUOTE
    return None


def suggest(token: str, universe: Mapping[str, str], limit: int = MAX_SUGGESTIONS) -> list[str]:
    """Close symbols: same prefix first (`BT` -> BTCUSDT), then by similarity (`ETHH` -> ETHUSDT)."""
    name = normalize(token)
    if not name:
        return []
    stem = name.removesuffix(DEFAULT_QUOTE) or name
    ordered = sorted(universe)
    picks: list[str] = [s for s in ordered if universe[s] == stem or universe[s].endswith(stem)]
    picks += [s for s in ordered if s.startswith(name) or universe[s].startswith(stem)]
    by_asset = {asset: symbol for symbol, asset in sorted(universe.items(), key=_usdt_first)}
    picks += [by_asset[a] for a in difflib.get_close_matches(stem, list(by_asset), n=limit, cutoff=0.6)]
    picks += difflib.get_close_matches(name, ordered, n=limit, cutoff=0.6)
    return list(dict.fromkeys(picks))[:limit]


def _usdt_first(item: tuple[str, str]) -> tuple[bool, str]:
    symbol, _ = item
    return (symbol.endswith(DEFAULT_QUOTE), symbol)  # USDT pairs sort last, so they win in the dict


def resolve(tokens: Iterable[str], universe: Mapping[str, str]) -> Resolution:
    result = Resolution()
    for token in tokens:
        symbol = resolve_one(token, universe)
        if symbol is None:
            result.unknown[token] = suggest(token, universe)
        elif symbol not in result.symbols:
            result.symbols.append(symbol)
    return result
