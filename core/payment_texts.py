"""The localized texts of payments and the plan (call inside an i18n context, or pass a locale)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.i18n import gettext as _
from core.plans import Kind, Refusal
from core.texts import tier_name
from core.tiers import Tier, limits
from core.timezones import display_timezone


def refusal_text(reason: Refusal) -> str:
    return {
        Refusal.UNKNOWN_PLAN: _("This plan is not on sale. Send /subscribe to see the current plans."),
        Refusal.PRICE_CHANGED: _("The price of this plan has changed. Send /subscribe for a new invoice."),
        Refusal.BANNED: _("Your access to VolSpike has been suspended, so this payment cannot be accepted."),
        Refusal.OTHER_USER: _("This invoice was made for another account. Send /subscribe for your own."),
        Refusal.LOWER: _(
            "You already have a higher plan, and this one would not add to it. "
            "Send /subscribe to see what you can buy."
        ),
        Refusal.FOREVER: _("You already have this plan with no end date."),
        Refusal.SUBSCRIBED: _(
            "You already subscribe to this plan and it renews by itself. See /subscription."
        ),
    }[reason]


def date_text(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M} UTC"


def local_date_text(when: datetime, zone: str) -> str:
    """The date in the user's time zone, written as /status writes it."""
    local = when.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {display_timezone(zone)}"


INVOICE_TITLE_MAX = 32  # Bot API sendInvoice / createInvoiceLink: title 1-32 characters
INVOICE_DESCRIPTION_MAX = 255  # description 1-255 characters


def fit(head: str, parts: list[str], limit: int) -> str:
    """`head` and as many whole `parts` (comma-separated, in order) as fit in `limit` characters:
    never a word cut in half."""
    text = head
    for index, part in enumerate(parts):
        candidate = f"{text} {part}" if index == 0 else f"{text}, {part}"
        if len(candidate) > limit:
            break
        text = candidate
    return text[:limit]


def tier_benefits(tier: Tier) -> str:
    """One line saying what a tier gives, from the tier table."""
    return ", ".join(benefit_parts(tier))


def benefit_parts(tier: Tier) -> list[str]:
    """What a tier gives, item by item, from the tier table."""
    table = limits(tier)
    minutes = int(table.alert_delay.total_seconds() // 60)
    parts = [
        _("alerts {minutes} min after detection").format(minutes=minutes)
        if minutes
        else _("real-time alerts"),
        _("last {count} alerts").format(count=table.history),
        _("watchlist of {count}").format(count=table.watchlist_size)
        if table.watchlist_size is not None
        else _("unlimited watchlist"),
    ]
    if table.custom_thresholds:
        parts.append(_("own thresholds, alert types and quiet hours"))
    if table.updates:
        parts.append(_("half-hour and hour-close updates, live Mini App stream"))
    return parts


def invoice_title(tier: Tier, kind: Kind) -> str:
    if kind is Kind.SUBSCRIPTION:
        title = _("VolSpike {tier} — monthly").format(tier=tier_name(tier))
    else:
        title = _("VolSpike {tier} — 30-day pass").format(tier=tier_name(tier))
    # A translation too long for Telegram's title falls back to the plan's name, never a cut word.
    return title if len(title) <= INVOICE_TITLE_MAX else f"VolSpike {tier_name(tier)}"


def invoice_description(tier: Tier, kind: Kind) -> str:
    if kind is Kind.SUBSCRIPTION:
        head = _("Renews every 30 days until you cancel in /subscription.")
    else:
        head = _("30 days, no renewal.")
    return fit(head, benefit_parts(tier), INVOICE_DESCRIPTION_MAX)


def paid_text(tier: Tier, expires_at: datetime | None, kind: Kind) -> str:
    if expires_at is None:
        return _("Thank you! You have {tier}.").format(tier=tier_name(tier))
    if kind is Kind.SUBSCRIPTION:
        return _(
            "Thank you! You have {tier} until {date}; it renews every 30 days. Manage it in /subscription."
        ).format(tier=tier_name(tier), date=date_text(expires_at))
    return _("Thank you! You have {tier} until {date}.").format(
        tier=tier_name(tier), date=date_text(expires_at)
    )


def refunded_text(tier: Tier, expires_at: datetime | None) -> str:
    if tier is Tier.FREE or expires_at is None:
        return _("Your payment was refunded. Your plan is now {tier}.").format(tier=tier_name(tier))
    return _("Your payment was refunded. Your plan is now {tier} until {date}.").format(
        tier=tier_name(tier), date=date_text(expires_at)
    )


def card_payment_failed_text(tier: Tier, expires_at: datetime | None) -> str:
    """A Stripe renewal payment failed: the tier stays until its expiry."""
    if tier is Tier.FREE or expires_at is None:
        return _("Your card payment for VolSpike did not go through. Update your card on the billing page.")
    return _(
        "Your card payment for VolSpike did not go through. You keep {tier} until {date}; "
        "update your card on the billing page to keep it after that."
    ).format(tier=tier_name(tier), date=date_text(expires_at))


def replaced_subscription_text(old: Tier) -> str:
    return _("Your {tier} monthly plan was cancelled: only the new plan renews now.").format(
        tier=tier_name(old)
    )
