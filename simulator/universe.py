"""The listed contracts: names, kinds, precisions and per-symbol market parameters.

Every parameter of a symbol derives from (seed, symbol name) only, so a symbol behaves the
same whatever the size of the universe around it.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

PERPETUAL_DELIVERY_MS = 4133404800000  # what Binance shows as deliveryDate for perpetuals
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

TRADING = "TRADING"
SETTLING = "SETTLING"
CLOSE = "CLOSE"

# (base asset, reference price, hourly quote volume range in USDT)
_MAJORS: tuple[tuple[str, float, float, float], ...] = (
    ("BTC", 95_000.0, 1.0e9, 5.0e9),
    ("ETH", 3_500.0, 5.0e8, 2.0e9),
    ("SOL", 180.0, 1.0e8, 6.0e8),
    ("XRP", 2.4, 8.0e7, 5.0e8),
    ("DOGE", 0.32, 6.0e7, 4.0e8),
    ("BNB", 650.0, 4.0e7, 2.0e8),
    ("ADA", 0.9, 3.0e7, 2.0e8),
    ("SUI", 3.8, 3.0e7, 2.0e8),
    ("LINK", 20.0, 2.0e7, 1.5e8),
    ("AVAX", 35.0, 2.0e7, 1.2e8),
)
_NAMED: tuple[tuple[str, float], ...] = (
    ("TRX", 0.25),
    ("TON", 5.5),
    ("DOT", 6.5),
    ("LTC", 100.0),
    ("BCH", 450.0),
    ("NEAR", 5.0),
    ("APT", 10.0),
    ("ARB", 0.8),
    ("OP", 2.0),
    ("FIL", 5.0),
    ("ATOM", 6.0),
    ("ETC", 25.0),
    ("INJ", 25.0),
    ("UNI", 12.0),
    ("AAVE", 300.0),
    ("WIF", 2.0),
    ("1000PEPE", 0.015),
    ("1000SHIB", 0.02),
    ("1000BONK", 0.03),
    ("SEI", 0.5),
    ("TIA", 5.0),
    ("ORDI", 30.0),
    ("ENA", 0.9),
    ("HBAR", 0.28),
    ("XLM", 0.4),
    ("ALGO", 0.35),
    ("VET", 0.045),
    ("ICP", 10.0),
    ("RENDER", 7.0),
    ("FET", 1.5),
    ("GRT", 0.25),
    ("SAND", 0.5),
    ("MANA", 0.5),
    ("AXS", 6.0),
    ("GALA", 0.035),
    ("IMX", 1.5),
    ("LDO", 1.8),
    ("CRV", 0.8),
    ("SNX", 2.0),
    ("COMP", 80.0),
    ("DYDX", 1.5),
    ("GMX", 25.0),
    ("JUP", 1.0),
    ("PYTH", 0.4),
    ("STRK", 0.5),
    ("ZRO", 4.0),
    ("W", 0.3),
    ("ONDO", 1.3),
    ("TAO", 450.0),
    ("WLD", 2.5),
    ("EIGEN", 3.0),
    ("NOT", 0.006),
    ("PENDLE", 5.0),
    ("JTO", 3.0),
    ("BLUR", 0.3),
    ("MEME", 0.015),
    ("KAS", 0.12),
    ("STX", 1.8),
    ("RUNE", 5.0),
    ("EGLD", 35.0),
    ("THETA", 2.0),
    ("FLOW", 0.8),
    ("CHZ", 0.1),
    ("APE", 1.3),
    ("MASK", 3.0),
    ("ENS", 30.0),
    ("1INCH", 0.4),
    ("ZEC", 50.0),
    ("DASH", 35.0),
    ("XTZ", 1.2),
    ("KAVA", 0.5),
    ("ROSE", 0.1),
    ("CELO", 0.7),
    ("ZIL", 0.02),
    ("IOTA", 0.3),
    ("QNT", 100.0),
)


def stable_hash(*parts: object) -> int:
    """A 64-bit hash that is the same in every process (unlike the salted built-in ``hash``)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


@dataclass(slots=True)
class SymbolInfo:
    symbol: str
    base: str
    quote: str
    contract_type: str  # PERPETUAL, CURRENT_QUARTER, TRADIFI_PERPETUAL
    onboard_ms: int
    delivery_ms: int
    ref_price: float
    hourly_quote: float  # typical quote volume per hour, USDT
    volatility: float  # multiplier on the price noise
    avg_trade_quote: float  # typical trade size, USDT
    price_precision: int
    quantity_precision: int
    key: int  # stable per (seed, symbol)
    pair: str = ""
    fixed_status: str | None = None  # a status that never changes (e.g. a SETTLING leftover)
    delisted: bool = False  # delivery_ms was moved by a delisting

    @property
    def stream_symbol(self) -> str:
        return self.symbol.lower()

    @property
    def tick(self) -> float:
        return 10.0**-self.price_precision

    def status(self, now_ms: int) -> str:
        if self.fixed_status is not None:
            return self.fixed_status
        if now_ms < self.delivery_ms:
            return TRADING
        # past delivery/delisting: settling for an hour, closed after
        return SETTLING if now_ms < self.delivery_ms + HOUR_MS else CLOSE

    def trades_at(self, t_ms: int) -> bool:
        """Whether the contract trades at ``t_ms`` (it has klines)."""
        return self.fixed_status is None and self.onboard_ms <= t_ms < self.delivery_ms


def next_quarter_delivery(start_ms: int) -> int:
    """08:00 UTC on the 25th of the next quarter month at least a week after ``start_ms``
    (e.g. 2026-12-25 08:00 UTC, the BTCUSDT_261225 contract)."""
    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    year, month = start.year, start.month
    while True:
        if month % 3 == 0:
            when = datetime(year, month, 25, 8, tzinfo=UTC)
            if when.timestamp() * 1000 >= start_ms + 7 * DAY_MS:
                return int(when.timestamp() * 1000)
        month += 1
        if month > 12:
            year, month = year + 1, 1


def _precisions(price: float) -> tuple[int, int]:
    magnitude = math.floor(math.log10(price))
    price_precision = min(8, max(1, 5 - magnitude))
    quantity_precision = min(3, max(0, magnitude))
    return price_precision, quantity_precision


def _generated_base(i: int) -> str:
    letters = ""
    n = i
    for _ in range(3):
        letters = chr(ord("A") + n % 26) + letters
        n //= 26
    return f"{letters}1"


def make_symbol(
    seed: int,
    symbol: str,
    base: str,
    *,
    quote: str = "USDT",
    contract_type: str = "PERPETUAL",
    ref_price: float | None = None,
    hourly_range: tuple[float, float] | None = None,
    onboard_ms: int | None = None,
    latest_onboard_ms: int | None = None,
    delivery_ms: int = PERPETUAL_DELIVERY_MS,
    pair: str | None = None,
    fixed_status: str | None = None,
) -> SymbolInfo:
    key = stable_hash(seed, symbol)
    rng = random.Random(key)
    price = ref_price if ref_price is not None else math.exp(rng.uniform(math.log(0.0005), math.log(500.0)))
    if hourly_range is not None:
        low, high = hourly_range
        hourly = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        hourly = min(5.0e7, max(2.0e5, math.exp(rng.gauss(math.log(2.5e6), 1.3))))
    if onboard_ms is None:
        onboard_ms = rng.randrange(1577836800000, 1748736000000, DAY_MS) // DAY_MS * DAY_MS
        if latest_onboard_ms is not None:
            onboard_ms = min(onboard_ms, latest_onboard_ms // DAY_MS * DAY_MS)
    pp, qp = _precisions(price)
    return SymbolInfo(
        symbol=symbol,
        base=base,
        quote=quote,
        contract_type=contract_type,
        onboard_ms=onboard_ms,
        delivery_ms=delivery_ms,
        ref_price=price,
        hourly_quote=hourly,
        volatility=rng.uniform(0.7, 1.3) * (1.0 if hourly > 5e7 else 1.4),
        avg_trade_quote=max(20.0, min(8000.0, hourly / 6000.0)) * rng.uniform(0.6, 1.4),
        price_precision=pp,
        quantity_precision=qp,
        key=key,
        pair=pair or symbol,
        fixed_status=fixed_status,
    )


def build_universe(seed: int, count: int, start_ms: int, *, special: bool = True) -> list[SymbolInfo]:
    """``count`` tradeable USDT perpetuals, then (``special``) the entries ingest must handle:
    a quarterly, a USDC perpetual, a SETTLING leftover, a TradFi perpetual and a non-ASCII name."""
    latest_onboard = start_ms - 30 * DAY_MS
    out: list[SymbolInfo] = []
    for i in range(count):
        if i < len(_MAJORS):
            base, price, low, high = _MAJORS[i]
            onboard = 1569398400000 if base == "BTC" else None
            out.append(
                make_symbol(
                    seed,
                    f"{base}USDT",
                    base,
                    ref_price=price,
                    hourly_range=(low, high),
                    onboard_ms=onboard,
                    latest_onboard_ms=latest_onboard,
                )
            )
        elif i < len(_MAJORS) + len(_NAMED):
            base, price = _NAMED[i - len(_MAJORS)]
            out.append(
                make_symbol(
                    seed,
                    f"{base}USDT",
                    base,
                    ref_price=price,
                    hourly_range=(5.0e6, 1.0e8),
                    latest_onboard_ms=latest_onboard,
                )
            )
        else:
            base = _generated_base(i - len(_MAJORS) - len(_NAMED))
            out.append(make_symbol(seed, f"{base}USDT", base, latest_onboard_ms=latest_onboard))
    if special:
        out.append(
            make_symbol(
                seed,
                "币安人生USDT",
                "币安人生",
                ref_price=0.15,
                hourly_range=(5.0e6, 2.0e7),
                latest_onboard_ms=latest_onboard,
            )
        )
        delivery = next_quarter_delivery(start_ms)
        out.append(
            make_symbol(
                seed,
                "BTCUSDT_" + datetime.fromtimestamp(delivery / 1000, UTC).strftime("%y%m%d"),
                "BTC",
                contract_type="CURRENT_QUARTER",
                ref_price=96_500.0,
                hourly_range=(5.0e6, 3.0e7),
                delivery_ms=delivery,
                pair="BTCUSDT",
                latest_onboard_ms=latest_onboard,
            )
        )
        out.append(
            make_symbol(
                seed,
                "BTCUSDC",
                "BTC",
                quote="USDC",
                ref_price=95_000.0,
                hourly_range=(5.0e7, 2.0e8),
                latest_onboard_ms=latest_onboard,
            )
        )
        out.append(
            make_symbol(
                seed,
                "XAUUSDT",
                "XAU",
                contract_type="TRADIFI_PERPETUAL",
                ref_price=2_650.0,
                hourly_range=(1.0e7, 5.0e7),
                latest_onboard_ms=latest_onboard,
            )
        )
        out.append(
            make_symbol(
                seed,
                "LOOMUSDT",
                "LOOM",
                ref_price=0.05,
                fixed_status=SETTLING,
                latest_onboard_ms=latest_onboard,
            )
        )
    return out


def is_tradeable(info: SymbolInfo, now_ms: int) -> bool:
    """What ingest keeps: TRADING USDT-quoted PERPETUAL contracts."""
    return info.contract_type == "PERPETUAL" and info.quote == "USDT" and info.status(now_ms) == TRADING
