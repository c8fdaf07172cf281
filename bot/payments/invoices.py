"""Invoices for Stars: a subscription invoice link (`createInvoiceLink` with `subscription_period`)
and a pass invoice sent in the chat (`sendInvoice`); the fields come from `core.invoices`."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import LabeledPrice

from core.invoices import StarsInvoice, stars_invoice
from core.plans import Kind
from core.settings import Settings
from core.tiers import Tier


async def invoice_link(bot: Bot, settings: Settings, user_id: int, tier: Tier, kind: Kind) -> str:
    """An invoice link for the plan: a monthly subscription or a 30-day pass. Call inside an i18n
    context: title and description are in the user's language."""
    invoice = stars_invoice(settings, user_id, tier, kind)
    return await bot.create_invoice_link(**invoice.link_fields(), prices=_prices(invoice))


async def send_pass_invoice(bot: Bot, settings: Settings, chat_id: int, user_id: int, tier: Tier) -> None:
    invoice = stars_invoice(settings, user_id, tier, Kind.PASS)
    await bot.send_invoice(chat_id=chat_id, **invoice.fields(), prices=_prices(invoice))


def _prices(invoice: StarsInvoice) -> list[LabeledPrice]:
    return [LabeledPrice(label=invoice.title, amount=invoice.price)]
