"""The tradable symbols (active rows of `symbols`), cached in-process for a few seconds:
every API call that names a symbol checks it, and the universe changes only when ingest
refreshes it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import asyncpg

from core.errors import UnknownSymbol
from db import symbol_universe
from db.symbol_universe import SymbolRow

TTL = 30.0


@dataclass
class SymbolUniverse:
    pool: asyncpg.Pool
    ttl: float = TTL
    _rows: dict[str, SymbolRow] = field(default_factory=dict)
    _assets: dict[str, str] = field(default_factory=dict)
    _loaded_at: float | None = None

    async def rows(self) -> dict[str, SymbolRow]:
        now = time.monotonic()
        if self._loaded_at is None or now - self._loaded_at > self.ttl:
            self._rows = await symbol_universe.active(self.pool)
            self._assets = {s: r.base_asset for s, r in self._rows.items()}
            self._loaded_at = now
        return self._rows

    async def assets(self) -> dict[str, str]:
        """symbol -> base asset of every active symbol."""
        await self.rows()
        return self._assets

    async def require(self, symbol: str) -> str:
        """The symbol's base asset; UnknownSymbol (400) when ingest does not follow it."""
        asset = (await self.assets()).get(symbol)
        if asset is None:
            raise UnknownSymbol(f"unknown symbol {symbol[:30]!r}")
        return asset
