"""The tier lifecycle jobs: paid tiers that expired go back to free (and the user is told), and a
user whose paid tier ends without renewal is reminded 3 days and 1 day before, each reminder once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import asyncpg
from aiogram import Bot
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.payments.notify import tell_user
from core.payment_texts import date_text
from core.texts import tier_name
from core.tiers import Tier
from db import subscriptions as subscriptions_db
from db.tier_history import Cause, change_tier, lock_user

log = logging.getLogger(__name__)

REMINDER_DAYS = (3, 1)
RENEWAL_GRACE = timedelta(hours=6)  # a renewing subscription's payment may land a little late
BATCH = 500


def due_reminders(expires_at: datetime, now: datetime, sent: frozenset[int]) -> tuple[int | None, list[int]]:
    """(the reminder to send, every reminder to mark sent). Within a day of the expiry only the
    1-day reminder goes out, and the 3-day one counts as sent with it."""
    left = expires_at - now
    due = [days for days in REMINDER_DAYS if left <= timedelta(days=days) and days not in sent]
    if not due:
        return None, []
    return min(due), due


def ended_text(tier: Tier) -> str:
    return _(
        "Your {tier} plan has ended and you are on the free plan now. Send /subscribe to continue."
    ).format(tier=tier_name(tier))


def reminder_text(tier: Tier, expires_at: datetime) -> str:
    return _("Your {tier} plan ends on {date} and will not renew. Send /subscribe to keep it.").format(
        tier=tier_name(tier), date=date_text(expires_at)
    )


@dataclass(frozen=True, slots=True)
class JobReport:
    downgraded: int = 0
    reminded: int = 0


async def downgrade_expired(
    pool: asyncpg.Pool, bot: Bot, i18n: I18n, now: datetime, *, grace: timedelta = RENEWAL_GRACE
) -> int:
    count = 0
    for row in await subscriptions_db.expired(pool, now, grace, BATCH):
        async with pool.acquire() as conn, conn.transaction():
            stored = await lock_user(conn, row.user_id)
            # Checked again under the lock: a payment may have extended it since the query.
            if stored is None or stored.tier == "free" or stored.expires_at != row.expires_at:
                continue
            await change_tier(conn, row.user_id, "free", None, cause=Cause.EXPIRY, before=stored)
        count += 1
        old = Tier(row.tier)
        log.info("tier expired", extra={"user_id": row.user_id, "tier": row.tier})
        await tell_user(
            bot,
            i18n,
            row.user_id,
            row.language,
            partial(ended_text, old),
        )
    return count


async def send_reminders(pool: asyncpg.Pool, bot: Bot, i18n: I18n, now: datetime) -> int:
    count = 0
    horizon = timedelta(days=max(REMINDER_DAYS))
    for row in await subscriptions_db.expiring(pool, now, horizon, BATCH):
        assert row.expires_at is not None
        send, mark = due_reminders(row.expires_at, now, row.reminders_sent)
        if send is None:
            continue
        recorded = await subscriptions_db.mark_reminded(pool, row.user_id, row.expires_at, mark)
        if send not in recorded:
            continue  # another run recorded it first
        count += 1
        await tell_user(
            bot, i18n, row.user_id, row.language, partial(reminder_text, Tier(row.tier), row.expires_at)
        )
    return count


async def run_lifecycle(pool: asyncpg.Pool, bot: Bot, i18n: I18n, now: datetime) -> JobReport:
    return JobReport(
        downgraded=await downgrade_expired(pool, bot, i18n, now),
        reminded=await send_reminders(pool, bot, i18n, now),
    )
