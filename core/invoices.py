"""A Stars invoice's fields for a plan: what `createInvoiceLink` (the bot's /subscribe, the Mini
App's `openInvoice`) and `sendInvoice` (a pass in the chat) are called with.

Stars take currency XTR, an empty provider token and exactly one price. Call inside an i18n
context: the title and description are in the user's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from core.errors import BadInput
from core.payment_texts import invoice_description, invoice_title
from core.plans import CURRENCY, SUBSCRIPTION_PERIOD, Kind, Payload, price, subscription_allowed
from core.settings import Settings
from core.tiers import Tier

PROVIDER_TOKEN = ""  # Stars: no payment provider


class InvoiceFields(TypedDict):
    """`sendInvoice`'s fields but the prices (one, labelled with the title, of `price` Stars)."""

    title: str
    description: str
    payload: str
    provider_token: str
    currency: str


class InvoiceLinkFields(InvoiceFields):
    """`createInvoiceLink`'s fields but the prices: a subscription's period too."""

    subscription_period: int | None


@dataclass(frozen=True, slots=True)
class StarsInvoice:
    title: str
    description: str
    payload: str
    price: int
    currency: str = CURRENCY
    subscription_period: int | None = None

    def fields(self) -> InvoiceFields:
        return InvoiceFields(
            title=self.title,
            description=self.description,
            payload=self.payload,
            provider_token=PROVIDER_TOKEN,
            currency=self.currency,
        )

    def link_fields(self) -> InvoiceLinkFields:
        return InvoiceLinkFields(**self.fields(), subscription_period=self.subscription_period)


def payload_for(settings: Settings, user_id: int, tier: Tier, kind: Kind) -> Payload:
    return Payload(kind, tier, price(settings, tier), user_id)


def stars_invoice(settings: Settings, user_id: int, tier: Tier, kind: Kind) -> StarsInvoice:
    """The invoice for the plan: a monthly subscription or a 30-day pass (BadInput when the
    subscription's price is above Telegram's cap)."""
    payload = payload_for(settings, user_id, tier, kind)
    if kind is Kind.SUBSCRIPTION and not subscription_allowed(payload.price):
        raise BadInput(f"{payload.price} Stars is above Telegram's subscription cap")
    return StarsInvoice(
        title=invoice_title(tier, kind),
        description=invoice_description(tier, kind),
        payload=payload.encode(),
        price=payload.price,
        subscription_period=SUBSCRIPTION_PERIOD if kind is Kind.SUBSCRIPTION else None,
    )
