"""The Stars half of the Telegram look-alike: payment methods and payment updates, in the Bot API's
wire format, plugged into a running FakeTelegram (`FakeStars(tg)`).

Methods: `createInvoiceLink`, `sendInvoice` (XTR, empty provider token, exactly one price; a
subscription must have `subscription_period` 2592000 and at most 10000 Stars), `answerPreCheckoutQuery`,
`refundStarPayment` (refuses an unknown or already refunded charge the way Telegram does),
`editUserStarSubscription`, `getStarTransactions` (the bot's ledger in chronological order, paged by
`offset`/`limit`; paid broadcasts billed by `tg.limits` since the last read enter it as one
`telegram_api` transaction). Builders make the updates Telegram sends: `pre_checkout_query`, a message with
`successful_payment`, a message with `refunded_payment`. Every successful payment enters the
ledger, as it does at Telegram, whether or not its update is pushed.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.telegram_api import BOT_ID, FakeTelegram, _error
from tests.fakes.telegram_limits import NANOSTARS_PER_MESSAGE

SUBSCRIPTION_PERIOD = 2_592_000
MAX_SUBSCRIPTION_STARS = 10_000


@dataclass
class StarCharge:
    user_id: int
    charge_id: str
    amount: int
    payload: str
    date: int
    subscription_period: int | None = None
    refunded: bool = False
    canceled: bool = False


@dataclass
class FakeStars:
    tg: FakeTelegram
    charges: dict[str, StarCharge] = field(default_factory=dict)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self.tg.methods.update(
            {
                "createInvoiceLink": self._create_invoice_link,
                "sendInvoice": self._send_invoice,
                "answerPreCheckoutQuery": lambda params: True,
                "refundStarPayment": self._refund,
                "editUserStarSubscription": self._edit_subscription,
                "getStarTransactions": self._transactions,
            }
        )

    # -- methods ------------------------------------------------------------------------

    def _invoice_error(self, params: dict[str, Any], *, link: bool) -> web.Response | None:
        prices = params.get("prices")
        if params.get("currency") != "XTR":
            return _error(400, "Bad Request: CURRENCY_INVALID")
        if params.get("provider_token") not in (None, ""):
            return _error(400, "Bad Request: PROVIDER_TOKEN_INVALID")
        if not isinstance(prices, list) or len(prices) != 1:
            return _error(400, "Bad Request: STARS_INVOICE_INVALID")
        period = params.get("subscription_period")
        if period is not None:
            if not link or int(period) != SUBSCRIPTION_PERIOD:
                return _error(400, "Bad Request: SUBSCRIPTION_PERIOD_INVALID")
            if int(prices[0]["amount"]) > MAX_SUBSCRIPTION_STARS:
                return _error(400, "Bad Request: STARS_INVOICE_INVALID")
        if not params.get("payload") or not params.get("title") or not params.get("description"):
            return _error(400, "Bad Request: invoice parameters are missing")
        return None

    def _create_invoice_link(self, params: dict[str, Any]) -> object:
        error = self._invoice_error(params, link=True)
        if error is not None:
            return error
        slug = f"inv{next(self._ids)}"
        self.links[slug] = params
        return f"https://t.me/${slug}"

    def _send_invoice(self, params: dict[str, Any]) -> object:
        error = self._invoice_error(params, link=False)
        if error is not None:
            return error
        message = self.tg._message(params)
        message["invoice"] = {
            "title": params["title"],
            "description": params["description"],
            "start_parameter": params.get("start_parameter", ""),
            "currency": "XTR",
            "total_amount": int(params["prices"][0]["amount"]),
        }
        return message

    def _refund(self, params: dict[str, Any]) -> object:
        charge = self.charges.get(str(params.get("telegram_payment_charge_id")))
        if charge is None or charge.user_id != int(params.get("user_id", 0)):
            return _error(400, "Bad Request: CHARGE_NOT_FOUND")
        if charge.refunded:
            return _error(400, "Bad Request: CHARGE_ALREADY_REFUNDED")
        self._ledger_refund(charge)
        return True

    def _edit_subscription(self, params: dict[str, Any]) -> object:
        charge = self.charges.get(str(params.get("telegram_payment_charge_id")))
        if charge is None or charge.subscription_period is None or charge.user_id != int(params["user_id"]):
            return _error(400, "Bad Request: SUBSCRIPTION_NOT_FOUND")
        charge.canceled = str(params.get("is_canceled")).lower() == "true"
        return True

    def _transactions(self, params: dict[str, Any]) -> object:
        offset = int(params.get("offset") or 0)
        limit = min(int(params.get("limit") or 100), 100)
        self._ledger_paid_broadcasts()
        return {"transactions": self.ledger[offset : offset + limit]}

    # -- the ledger ---------------------------------------------------------------------

    def charge(
        self,
        user_id: int,
        payload: str,
        amount: int,
        *,
        charge_id: str | None = None,
        subscription_period: int | None = None,
        first_name: str = "Trader",
    ) -> StarCharge:
        """A successful payment as Telegram's ledger holds it (no update is pushed)."""
        charge = StarCharge(
            user_id,
            charge_id or f"stxCHARGE{next(self._ids)}",
            amount,
            payload,
            int(time.time()),
            subscription_period,
        )
        self.charges[charge.charge_id] = charge
        source: dict[str, Any] = {
            "type": "user",
            "transaction_type": "invoice_payment",
            "user": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"},
            "invoice_payload": payload,
        }
        if subscription_period is not None:
            source["subscription_period"] = subscription_period
        self.ledger.append({"id": charge.charge_id, "amount": amount, "date": charge.date, "source": source})
        return charge

    def _ledger_paid_broadcasts(self) -> None:
        """Messages billed since the last read, as Telegram reports them: an outgoing transaction
        to the Bot API (TransactionPartnerTelegramApi) for 0.1 Stars per billed request."""
        count = self.tg.limits.take_unledgered() if self.tg.limits is not None else 0
        if not count:
            return
        stars, nanostars = divmod(count * NANOSTARS_PER_MESSAGE, 1_000_000_000)
        self.ledger.append(
            {
                "id": f"stxPAIDBROADCAST{next(self._ids)}",
                "amount": stars,
                "nanostar_amount": nanostars,
                "date": int(time.time()),
                "receiver": {"type": "telegram_api", "request_count": count},
            }
        )

    def _ledger_refund(self, charge: StarCharge) -> None:
        charge.refunded = True
        self.ledger.append(
            {
                "id": charge.charge_id,
                "amount": charge.amount,
                "date": int(time.time()),
                "receiver": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": {"id": charge.user_id, "is_bot": False, "first_name": "Trader"},
                    "invoice_payload": charge.payload,
                },
            }
        )

    # -- updates ------------------------------------------------------------------------

    def pre_checkout_update(
        self, user_id: int, payload: str, total_amount: int, *, currency: str = "XTR"
    ) -> dict[str, Any]:
        return {
            "pre_checkout_query": {
                "id": f"pcq{next(self._ids)}",
                "from": {"id": user_id, "is_bot": False, "first_name": "Trader", "language_code": "en"},
                "currency": currency,
                "total_amount": total_amount,
                "invoice_payload": payload,
            }
        }

    def push_pre_checkout_query(self, user_id: int, payload: str, total_amount: int, **kwargs: Any) -> str:
        """Push the query; returns its id (answerPreCheckoutQuery's `pre_checkout_query_id`)."""
        update = self.pre_checkout_update(user_id, payload, total_amount, **kwargs)
        self.tg.push_update(update)
        return str(update["pre_checkout_query"]["id"])

    def _service_message(self, user_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "message": {
                "message_id": next(self.tg._message_ids),
                "date": int(time.time()),
                "chat": {"id": user_id, "type": "private", "first_name": "Trader"},
                "from": {"id": user_id, "is_bot": False, "first_name": "Trader", "language_code": "en"},
                **body,
            }
        }

    def successful_payment_update(
        self,
        charge: StarCharge,
        *,
        subscription_expiration_date: int | None = None,
        is_recurring: bool | None = None,
        is_first_recurring: bool | None = None,
    ) -> dict[str, Any]:
        payment: dict[str, Any] = {
            "currency": "XTR",
            "total_amount": charge.amount,
            "invoice_payload": charge.payload,
            "telegram_payment_charge_id": charge.charge_id,
            "provider_payment_charge_id": "",
        }
        if subscription_expiration_date is not None:
            payment["subscription_expiration_date"] = subscription_expiration_date
        if is_recurring is not None:
            payment["is_recurring"] = is_recurring
        if is_first_recurring is not None:
            payment["is_first_recurring"] = is_first_recurring
        return self._service_message(charge.user_id, {"successful_payment": payment})

    def push_successful_payment(self, charge: StarCharge, **kwargs: Any) -> int:
        return self.tg.push_update(self.successful_payment_update(charge, **kwargs))

    def refunded_payment_update(self, charge: StarCharge) -> dict[str, Any]:
        refund = {
            "currency": "XTR",
            "total_amount": charge.amount,
            "invoice_payload": charge.payload,
            "telegram_payment_charge_id": charge.charge_id,
        }
        return self._service_message(charge.user_id, {"refunded_payment": refund})

    def push_refunded_payment(self, charge: StarCharge) -> int:
        """A refund Telegram made (or the message after refundStarPayment)."""
        if not charge.refunded:
            self._ledger_refund(charge)
        return self.tg.push_update(self.refunded_payment_update(charge))


__all__ = ["BOT_ID", "FakeStars", "StarCharge"]
