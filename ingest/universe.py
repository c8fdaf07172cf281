"""Which contracts ingest follows: TRADING, USDT-quoted perpetuals from exchangeInfo.

`select_universe` is pure. `UniverseRefresher` fetches exchangeInfo every few minutes,
reports what was listed and delisted, and keeps the `symbols` table in step.

A perpetual that Binance schedules for delisting keeps status TRADING until the moment,
but its `deliveryDate` moves from the far future (2100-12-25) to the delisting time; we drop
it once that time is within `delist_horizon_ms`, like a status change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from core.number_format import tick_decimals
from core.tasks import raise_if_cancelling
from db import symbols as symbols_db
from db.pool import PG_UNAVAILABLE
from ingest.binance_rest import BinanceError, BinanceRest

log = logging.getLogger(__name__)

REFRESH_ERRORS: tuple[type[Exception], ...] = (BinanceError, asyncpg.PostgresError, *PG_UNAVAILABLE)

PERPETUAL = "PERPETUAL"
TRADIFI_PERPETUAL = "TRADIFI_PERPETUAL"
TRADING = "TRADING"
QUOTE = "USDT"
DEFAULT_DELIST_HORIZON_MS = 3_600_000
DEFAULT_REFRESH_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    symbol: str
    base_asset: str
    quote_asset: str
    contract_type: str
    status: str
    onboard_ms: int | None
    delivery_ms: int | None
    price_precision: int | None

    @property
    def stream_name(self) -> str:
        """The kline stream of this symbol (Binance stream names are lower case)."""
        return f"{self.symbol.lower()}@kline_1m"


@dataclass(frozen=True, slots=True)
class UniverseChange:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    current: Mapping[str, SymbolInfo] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _price_decimals(entry: Mapping[str, Any]) -> int | None:
    """The decimals of the PRICE_FILTER's tickSize (what a price moves by), else pricePrecision."""
    filters = entry.get("filters")
    for item in filters if isinstance(filters, list) else ():
        if isinstance(item, Mapping) and item.get("filterType") == "PRICE_FILTER":
            decimals = tick_decimals(item.get("tickSize"))
            if decimals is not None:
                return decimals
    return _int_or_none(entry.get("pricePrecision"))


def parse_symbol(entry: Mapping[str, Any]) -> SymbolInfo | None:
    """One exchangeInfo `symbols[]` entry, or None when it lacks the fields we need."""
    symbol, base, quote = entry.get("symbol"), entry.get("baseAsset"), entry.get("quoteAsset")
    contract, status = entry.get("contractType"), entry.get("status")
    if not all(isinstance(v, str) and v for v in (symbol, base, quote, contract, status)):
        return None
    return SymbolInfo(
        symbol=str(symbol),
        base_asset=str(base),
        quote_asset=str(quote),
        contract_type=str(contract),
        status=str(status),
        onboard_ms=_int_or_none(entry.get("onboardDate")),
        delivery_ms=_int_or_none(entry.get("deliveryDate")),
        price_precision=_price_decimals(entry),
    )


def is_followed(
    info: SymbolInfo,
    include_tradfi: bool,
    now_ms: int | None,
    delist_horizon_ms: int = DEFAULT_DELIST_HORIZON_MS,
) -> bool:
    kinds = (PERPETUAL, TRADIFI_PERPETUAL) if include_tradfi else (PERPETUAL,)
    if info.contract_type not in kinds or info.status != TRADING or info.quote_asset != QUOTE:
        return False
    delisting_soon = (
        now_ms is not None and info.delivery_ms is not None and info.delivery_ms <= now_ms + delist_horizon_ms
    )
    return not delisting_soon


def select_universe(
    exchange_info: Mapping[str, Any],
    include_tradfi: bool,
    *,
    now_ms: int | None = None,
    delist_horizon_ms: int = DEFAULT_DELIST_HORIZON_MS,
) -> dict[str, SymbolInfo]:
    """Symbols ingest follows, by name. `now_ms` defaults to exchangeInfo `serverTime`."""
    if now_ms is None:
        now_ms = _int_or_none(exchange_info.get("serverTime"))
    out: dict[str, SymbolInfo] = {}
    for entry in exchange_info.get("symbols") or ():
        if not isinstance(entry, Mapping):
            continue
        info = parse_symbol(entry)
        if info is not None and is_followed(info, include_tradfi, now_ms, delist_horizon_ms):
            out[info.symbol] = info
    return out


def all_symbols(exchange_info: Mapping[str, Any]) -> dict[str, SymbolInfo]:
    """Every parseable entry, followed or not (to record statuses in the symbols table)."""
    out: dict[str, SymbolInfo] = {}
    for entry in exchange_info.get("symbols") or ():
        if isinstance(entry, Mapping) and (info := parse_symbol(entry)) is not None:
            out[info.symbol] = info
    return out


def diff_universe(old: Mapping[str, SymbolInfo], new: Mapping[str, SymbolInfo]) -> UniverseChange:
    return UniverseChange(
        added=tuple(sorted(set(new) - set(old))),
        removed=tuple(sorted(set(old) - set(new))),
        current=dict(new),
    )


OnChange = Callable[[UniverseChange], Awaitable[None]]


class UniverseRefresher:
    """Keeps the followed universe current and the `symbols` table in step with it."""

    def __init__(
        self,
        rest: BinanceRest,
        pool: asyncpg.Pool,
        *,
        include_tradfi: bool,
        interval: float = DEFAULT_REFRESH_SECONDS,
        delist_horizon_ms: int = DEFAULT_DELIST_HORIZON_MS,
        store: bool = True,
    ) -> None:
        self._rest = rest
        self._store = store  # keep the `symbols` table in step (one ingest shard does)
        self._pool = pool
        self._include_tradfi = include_tradfi
        self._interval = interval
        self._delist_horizon_ms = delist_horizon_ms
        self.current: dict[str, SymbolInfo] = {}
        self.server_time_ms: int | None = None

    async def refresh(self) -> UniverseChange:
        """Fetch exchangeInfo, store it, and return what changed since the last call."""
        info = await self._rest.exchange_info()
        self.server_time_ms = _int_or_none(info.get("serverTime"))
        selected = select_universe(info, self._include_tradfi, delist_horizon_ms=self._delist_horizon_ms)
        change = diff_universe(self.current, selected)
        if self._store:
            async with self._pool.acquire() as conn, conn.transaction():
                await symbols_db.upsert(conn, list(all_symbols(info).values()), active=set(selected))
                await symbols_db.deactivate_missing(conn, set(selected))
        self.current = selected
        if change.changed:
            log.info(
                "universe changed",
                extra={
                    "added": list(change.added)[:20],
                    "removed": list(change.removed)[:20],
                    "symbols": len(selected),
                },
            )
        return change

    async def run(self, on_change: OnChange) -> None:
        """Refresh every `interval` seconds until cancelled; a failed refresh is retried next time."""
        while True:
            raise_if_cancelling()
            await asyncio.sleep(self._interval)
            try:
                change = await self.refresh()
            except REFRESH_ERRORS as exc:
                log.warning("universe refresh failed", extra={"error": str(exc)})
                continue
            if change.changed:
                await on_change(change)
