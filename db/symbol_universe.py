"""The active symbols with what the webapp shows of them (asset, quote, price precision)."""

from __future__ import annotations

from dataclasses import dataclass

from db.symbols import Executor

ACTIVE = "SELECT symbol, base_asset, quote_asset, price_precision FROM symbols WHERE active ORDER BY symbol"


@dataclass(frozen=True, slots=True)
class SymbolRow:
    symbol: str
    base_asset: str
    quote_asset: str
    price_precision: int | None


async def active(conn: Executor) -> dict[str, SymbolRow]:
    return {
        r["symbol"]: SymbolRow(r["symbol"], r["base_asset"], r["quote_asset"], r["price_precision"])
        for r in await conn.fetch(ACTIVE)
    }
