"""Helpers for the Mini App API tests: initData signed as Telegram signs it, and rows of
symbols, candles and alerts in the real test database."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import asyncpg

from core.alerts import Alert, AlertType
from db.alerts import insert_alert
from db.partitions import ensure_partitions

BOT_TOKEN = "123456:TEST-miniapp-token-AAAAAAAAAAAAAAAAAAA"
OTHER_BOT_TOKEN = "654321:OTHER-bot-token-BBBBBBBBBBBBBBBBBBBB"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def sign_init_data(fields: Mapping[str, str], token: str = BOT_TOKEN) -> str:
    """The raw initData query string Telegram would pass, with its `hash` (Mini Apps docs:
    HMAC-SHA256 of the sorted `key=value` lines, keyed with HMAC-SHA256("WebAppData", token))."""
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    digest = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest})


def init_data(
    user_id: int = 1001,
    *,
    first_name: str = "Ada",
    language: str = "en",
    auth_date: datetime = NOW,
    token: str = BOT_TOKEN,
    extra: Mapping[str, str] | None = None,
) -> str:
    user = {"id": user_id, "first_name": first_name, "language_code": language, "allows_write_to_pm": True}
    fields = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(user, separators=(",", ":")),
        "auth_date": str(int(auth_date.timestamp())),
        **(extra or {}),
    }
    return sign_init_data(fields, token)


def tma(raw: str) -> dict[str, str]:
    return {"Authorization": f"tma {raw}"}


async def add_symbols(pool: asyncpg.Pool, symbols: Iterable[str]) -> None:
    await pool.executemany(
        "INSERT INTO symbols (symbol, base_asset, quote_asset, contract_type, status) "
        "VALUES ($1, $2, 'USDT', 'PERPETUAL', 'TRADING') ON CONFLICT DO NOTHING",
        [(s, s.removesuffix("USDT")) for s in symbols],
    )


async def set_tier(pool: asyncpg.Pool, user_id: int, tier: str, expires: datetime | None = None) -> None:
    await pool.execute(
        "INSERT INTO users (id, first_name, tier, tier_expires_at) VALUES ($1, 'Ada', $2, $3) "
        "ON CONFLICT (id) DO UPDATE SET tier = $2, tier_expires_at = $3",
        user_id,
        tier,
        expires,
    )


async def add_minutes(
    pool: asyncpg.Pool, symbol: str, start: datetime, count: int, *, price: float = 100.0
) -> None:
    """`count` closed 1m candles from `start`: open = price + i, close = open + 0.5, quote volume 1000 + i."""
    await ensure_partitions(pool, start.date() - timedelta(days=1), (start + timedelta(minutes=count)).date())
    rows = []
    for i in range(count):
        o = price + i
        rows.append(
            (symbol, start + timedelta(minutes=i), o, o + 1, o - 1, o + 0.5, 10.0, 1000.0 + i, 5, 4.0, 400.0)
        )
    await pool.executemany(
        "INSERT INTO candles_1m VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
        rows,
    )


async def add_alert(
    pool: asyncpg.Pool,
    symbol: str,
    detected_at: datetime,
    alert_type: AlertType = AlertType.SPIKE,
    *,
    ratio: float = 3.5,
) -> int:
    hour = detected_at.replace(minute=0, second=0, microsecond=0)
    alert = Alert(
        symbol=symbol,
        asset=symbol.removesuffix("USDT"),
        alert_type=alert_type,
        hour=hour,
        detected_at=detected_at,
        current_volume=5_000_000.0,
        previous_volume=5_000_000.0 / ratio,
        ratio=ratio,
        price=97_000.0,
        funding_rate=0.0001,
    )
    alert_id = await insert_alert(pool, alert)
    assert alert_id is not None
    return alert_id
