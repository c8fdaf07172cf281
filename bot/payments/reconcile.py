"""Daily reconciliation with `getStarTransactions`: any Stars payment (or refund) whose update never
reached the bot — it was down longer than Telegram keeps updates — is recorded from the bot's
transaction list, with a log line and a message to the admins.

Transactions come in chronological order; a cursor in `star_reconciliation` remembers how far the
last run read, and each run reads again the last OVERLAP of them so nothing at the edge is missed.
Recording is idempotent, so reading a transaction twice changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import asyncpg
from aiogram import Bot
from aiogram.types import StarTransaction, TransactionPartnerUser
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.payments.notify import tell_admins
from bot.payments.recording import PROVIDER, Recorded, StarsCharge, record_payment, record_refund
from core.i18n import pick_locale
from core.payment_texts import date_text
from core.settings import Settings
from core.texts import tier_name
from db import payments as payments_db
from db import subscriptions as subscriptions_db
from db.refunds import Refunded

log = logging.getLogger(__name__)

PAGE = 100  # getStarTransactions' largest page
MAX_PAGES = 100
OVERLAP = 100


@dataclass
class ReconcileReport:
    read: int = 0
    payments: list[Recorded] = field(default_factory=list)
    refunds: list[Refunded] = field(default_factory=list)


async def reconcile(
    pool: asyncpg.Pool, bot: Bot, settings: Settings, i18n: I18n, now: datetime
) -> ReconcileReport:
    report = ReconcileReport()
    async with pool.acquire() as conn:
        cursor = await payments_db.get_cursor(conn)
    offset = max(0, cursor - OVERLAP)
    for _page in range(MAX_PAGES):
        batch = (await bot.get_star_transactions(offset=offset, limit=PAGE)).transactions
        for transaction in batch:
            await _one(pool, transaction, now, report)
        offset += len(batch)
        report.read += len(batch)
        if len(batch) < PAGE:
            break
    async with pool.acquire() as conn:
        await payments_db.set_cursor(conn, max(offset, cursor), now)
    if report.payments or report.refunds:
        await tell_admins(bot, i18n, pool, settings.admin_ids, partial(_found_text, report))
    log.info(
        "stars reconciliation done",
        extra={"read": report.read, "payments": len(report.payments), "refunds": len(report.refunds)},
    )
    return report


def _found_text(report: ReconcileReport) -> str:
    lines = [_("Reconciliation found Stars transactions the bot never received:")]
    lines += [
        _("payment: user {user_id}, {tier} until {date}, charge {charge_id}").format(
            user_id=p.user_id,
            tier=tier_name(p.after.tier),
            date=date_text(p.after.expires_at) if p.after.expires_at else "-",
            charge_id=p.charge_id,
        )
        for p in report.payments
    ]
    lines += [
        _("refund: user {user_id}, charge {charge_id}").format(user_id=r.user_id, charge_id=r.charge_id)
        for r in report.refunds
    ]
    return "\n".join(lines)


async def _one(
    pool: asyncpg.Pool, transaction: StarTransaction, now: datetime, report: ReconcileReport
) -> None:
    source, receiver = transaction.source, transaction.receiver
    if isinstance(source, TransactionPartnerUser) and source.transaction_type == "invoice_payment":
        if source.invoice_payload is None:
            return
        if await payments_db.get_by_charge(pool, PROVIDER, transaction.id) is not None:
            return
        user = source.user
        async with pool.acquire() as conn:
            await payments_db.ensure_user(
                conn,
                user.id,
                username=user.username,
                first_name=user.first_name,
                language=pick_locale(user.language_code),
            )
        expires = None
        if source.subscription_period:
            expires = transaction.date + timedelta(seconds=source.subscription_period)
        current = await subscriptions_db.get(pool, user.id)
        recorded = await record_payment(
            pool,
            StarsCharge(
                user_id=user.id,
                charge_id=transaction.id,
                amount=transaction.amount,
                payload=source.invoice_payload,
                is_recurring=expires is not None and current is not None and current.provider == PROVIDER,
                subscription_expires_at=expires,
                source="reconciliation",
            ),
            now,
        )
        if recorded is not None:
            log.warning(
                "reconciliation recorded a stars payment the bot never received",
                extra={"user_id": user.id, "charge_id": transaction.id, "amount": transaction.amount},
            )
            report.payments.append(recorded)
    elif isinstance(receiver, TransactionPartnerUser):
        # A refund carries the id of the payment it returns.
        stored = await payments_db.get_by_charge(pool, PROVIDER, transaction.id)
        if stored is None or stored["status"] == "refunded":
            return
        refunded = await record_refund(pool, transaction.id, now)
        if refunded is not None:
            log.warning(
                "reconciliation recorded a stars refund the bot never received",
                extra={"user_id": refunded.user_id, "charge_id": transaction.id},
            )
            report.refunds.append(refunded)
