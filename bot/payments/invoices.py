"""Invoices for Stars: a subscription invoice link (`createInvoiceLink` with `subscription_period`),
a pass invoice sent in the chat (`sendInvoice`), and the link the Mini App opens with `openInvoice`.

Stars take currency XTR, an empty provider token and exactly one price.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import LabeledPrice

from core.errors import BadInput
from core.payment_texts import invoice_description, invoice_title
from core.plans import CURRENCY, SUBSCRIPTION_PERIOD, Kind, Payload, price, subscription_allowed
from core.settings import Settings
from core.tiers import Tier


def payload_for(settings: Settings, user_id: int, tier: Tier, kind: Kind) -> Payload:
    return Payload(kind, tier, price(settings, tier), user_id)


async def invoice_link(bot: Bot, settings: Settings, user_id: int, tier: Tier, kind: Kind) -> str:
    """An invoice link for the plan: a monthly subscription or a 30-day pass. Call inside an i18n
    context: title and description are in the user's language."""
    payload = payload_for(settings, user_id, tier, kind)
    if kind is Kind.SUBSCRIPTION and not subscription_allowed(payload.price):
        raise BadInput(f"{payload.price} Stars is above Telegram's subscription cap")
    return await bot.create_invoice_link(
        title=invoice_title(tier, kind),
        description=invoice_description(tier, kind),
        payload=payload.encode(),
        provider_token="",
        currency=CURRENCY,
        prices=[LabeledPrice(label=invoice_title(tier, kind), amount=payload.price)],
        subscription_period=SUBSCRIPTION_PERIOD if kind is Kind.SUBSCRIPTION else None,
    )


async def send_pass_invoice(bot: Bot, settings: Settings, chat_id: int, user_id: int, tier: Tier) -> None:
    payload = payload_for(settings, user_id, tier, Kind.PASS)
    await bot.send_invoice(
        chat_id=chat_id,
        title=invoice_title(tier, Kind.PASS),
        description=invoice_description(tier, Kind.PASS),
        payload=payload.encode(),
        provider_token="",
        currency=CURRENCY,
        prices=[LabeledPrice(label=invoice_title(tier, Kind.PASS), amount=payload.price)],
    )
