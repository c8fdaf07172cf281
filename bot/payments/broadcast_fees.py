"""What paid broadcasts cost, read from Telegram's own bill: the bot's Star ledger
(`getStarTransactions`) lists the Stars taken for messages sent with `allow_paid_broadcast` over
the free limit as outgoing transactions to `telegram_api` (TransactionPartnerTelegramApi, with the
number of billed messages in `request_count`). Only Telegram knows which messages were over the
free 30 per second, so the bot counts what Telegram charged, not an estimate of its own.

Each fee is stored once by its transaction id (`db.broadcast_fees`) in the same transaction as the
cursor, so a restart, a second bot process or a re-read of the ledger never counts a message twice;
what is new is added to the Prometheus counters.
"""

from __future__ import annotations

import logging

import asyncpg
from aiogram import Bot
from aiogram.types import StarTransaction, TransactionPartnerTelegramApi

from bot.delivery import metrics
from db import broadcast_fees
from db.broadcast_fees import NANOSTARS_PER_STAR, Fee, Totals

log = logging.getLogger(__name__)

PAGE = 100  # getStarTransactions' largest page
MAX_PAGES = 100
OVERLAP = 100  # transactions read again before the cursor, so nothing at the edge is missed


def fee_of(transaction: StarTransaction) -> Fee | None:
    receiver = transaction.receiver
    if not isinstance(receiver, TransactionPartnerTelegramApi):
        return None
    return Fee(
        transaction_id=transaction.id,
        request_count=receiver.request_count,
        nanostars=transaction.amount * NANOSTARS_PER_STAR + (transaction.nanostar_amount or 0),
        charged_at=transaction.date,
    )


async def collect_fees(pool: asyncpg.Pool, bot: Bot) -> Totals:
    """Read the ledger from the cursor on and store the paid broadcast fees; returns what was new."""
    async with pool.acquire() as conn:
        cursor = await broadcast_fees.get_cursor(conn)
    offset = max(0, cursor - OVERLAP)
    fees: list[Fee] = []
    for _page in range(MAX_PAGES):
        batch = (await bot.get_star_transactions(offset=offset, limit=PAGE)).transactions
        fees += [fee for fee in map(fee_of, batch) if fee is not None]
        offset += len(batch)
        if len(batch) < PAGE:
            break
    async with pool.acquire() as conn:
        new = await broadcast_fees.record(conn, fees, max(offset, cursor))
    if new.messages or new.nanostars:
        metrics.PAID_BROADCAST_MESSAGES.inc(new.messages)
        metrics.PAID_BROADCAST_STARS.inc(new.stars)
        log.info("paid broadcast fees recorded", extra={"messages": new.messages, "stars": new.stars})
    return new
