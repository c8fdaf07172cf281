"""The `symbols` table: the exchange universe as ingest last saw it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Executor = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool

UPSERT = """
INSERT INTO symbols AS s (
    symbol, base_asset, quote_asset, contract_type, status, active,
    onboard_date, delivery_date, price_precision, updated_at
)
SELECT u.symbol, u.base_asset, u.quote_asset, u.contract_type, u.status, u.active,
       to_timestamp(u.onboard_ms / 1000.0), to_timestamp(u.delivery_ms / 1000.0), u.price_precision, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[],
            $7::bigint[], $8::bigint[], $9::integer[])
     AS u(symbol, base_asset, quote_asset, contract_type, status, active,
          onboard_ms, delivery_ms, price_precision)
ON CONFLICT (symbol) DO UPDATE SET
    base_asset = EXCLUDED.base_asset,
    quote_asset = EXCLUDED.quote_asset,
    contract_type = EXCLUDED.contract_type,
    status = EXCLUDED.status,
    active = EXCLUDED.active,
    onboard_date = EXCLUDED.onboard_date,
    delivery_date = EXCLUDED.delivery_date,
    price_precision = EXCLUDED.price_precision,
    updated_at = now()
WHERE (s.base_asset, s.quote_asset, s.contract_type, s.status, s.active,
       s.onboard_date, s.delivery_date, s.price_precision)
      IS DISTINCT FROM
      (EXCLUDED.base_asset, EXCLUDED.quote_asset, EXCLUDED.contract_type, EXCLUDED.status, EXCLUDED.active,
       EXCLUDED.onboard_date, EXCLUDED.delivery_date, EXCLUDED.price_precision)
"""

DEACTIVATE_MISSING = """
UPDATE symbols SET active = false, updated_at = now()
WHERE active AND NOT (symbol = ANY($1::text[]))
"""

ACTIVE = "SELECT symbol FROM symbols WHERE active ORDER BY symbol"

ASSETS = "SELECT symbol, base_asset FROM symbols WHERE active"

ASSET = "SELECT base_asset FROM symbols WHERE symbol = $1"

KNOWN = "SELECT EXISTS (SELECT 1 FROM symbols WHERE symbol = $1)"


class SymbolRecord(Protocol):
    @property
    def symbol(self) -> str: ...
    @property
    def base_asset(self) -> str: ...
    @property
    def quote_asset(self) -> str: ...
    @property
    def contract_type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def onboard_ms(self) -> int | None: ...
    @property
    def delivery_ms(self) -> int | None: ...
    @property
    def price_precision(self) -> int | None: ...


async def upsert(conn: Executor, rows: Sequence[SymbolRecord], *, active: Collection[str]) -> None:
    """Insert or update every row; `active` names the symbols ingest follows."""
    if not rows:
        return
    await conn.execute(
        UPSERT,
        [r.symbol for r in rows],
        [r.base_asset for r in rows],
        [r.quote_asset for r in rows],
        [r.contract_type for r in rows],
        [r.status for r in rows],
        [r.symbol in active for r in rows],
        [r.onboard_ms for r in rows],
        [r.delivery_ms for r in rows],
        [r.price_precision for r in rows],
    )


async def deactivate_missing(conn: Executor, active: Collection[str]) -> int:
    """Mark every symbol not in `active` inactive; returns how many changed."""
    status: str = await conn.execute(DEACTIVATE_MISSING, list(active))
    return int(status.rsplit(" ", 1)[-1])


async def active_symbols(conn: Executor) -> list[str]:
    return [row["symbol"] for row in await conn.fetch(ACTIVE)]


async def assets(conn: Executor) -> dict[str, str]:
    return {row["symbol"]: row["base_asset"] for row in await conn.fetch(ASSETS)}


async def is_known(conn: Executor, symbol: str) -> bool:
    """Whether the universe holds `symbol` (trading now or delisted)."""
    known: bool = await conn.fetchval(KNOWN, symbol)
    return known


async def asset_of(conn: Executor, symbol: str) -> str | None:
    """The base asset of a symbol the universe holds (active or not), None for an unknown one."""
    value: str | None = await conn.fetchval(ASSET, symbol)
    return value
