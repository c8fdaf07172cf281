"""A local Stripe API look-alike: the few endpoints VolSpike calls, in Stripe's wire format.

The real `stripe.StripeClient` reaches it through `STRIPE_API_BASE`: requests are form-encoded
with bracketed keys (`metadata[tier]=pro`, `line_items[0][price]=price_pro`), authenticated with
`Authorization: Bearer sk_...`; answers are Stripe objects as JSON, errors
`{"error": {"type", "message", "code", "param"}}`.

- `POST /v1/checkout/sessions` makes a `checkout.session` whose `url` is this server's
  `/c/pay/<id>` (a page a browser can arrive at),
- `POST /v1/billing_portal/sessions` makes a `billing_portal.session` for a known customer,
- `GET /v1/subscriptions/<id>` answers a subscription the test put in `subscriptions`,
- `DELETE /v1/subscriptions/<id>` cancels it at once (status `canceled`),
- `GET /v1/prices/<id>` answers a price of `prices` (the harness's two monthly card plans),
- `GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]=pi_...` lists
  the invoice payment of a payment intent the test paid (`pay_invoice`), else an empty list.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.serving import serve

SECRET_KEY = "sk_test_volspike_look_alike"
WEBHOOK_SECRET = "whsec_volspike_look_alike"


def nested(form: dict[str, str]) -> dict[str, Any]:
    """Stripe's form encoding back to objects: `a[b][0][c]=v` becomes {"a": {"b": {"0": {"c": v}}}}."""
    out: dict[str, Any] = {}
    for key, value in form.items():
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def price(price_id: str, unit_amount: int, currency: str = "usd", interval: str = "month") -> dict[str, Any]:
    """A recurring Price object (the fields a checkout page reads)."""
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "currency": currency,
        "unit_amount": unit_amount,
        "type": "recurring",
        "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
    }


@dataclass
class FakeStripe:
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {p["id"]: p for p in (price("price_pro", 900), price("price_elite", 2900))}
    )
    invoice_payments: dict[str, dict[str, Any]] = field(default_factory=dict)  # payment intent → one
    cancel_unreachable: bool = False  # DELETE /v1/subscriptions/{id}: the connection drops, no answer

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeStripe:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self._checkout)
        app.router.add_post("/v1/billing_portal/sessions", self._portal)
        app.router.add_get("/v1/subscriptions/{id}", self._subscription)
        app.router.add_delete("/v1/subscriptions/{id}", self._cancel_subscription)
        app.router.add_get("/v1/prices/{id}", self._price)
        app.router.add_get("/v1/invoice_payments", self._invoice_payments)
        app.router.add_get("/c/pay/{id}", self._pay_page)
        self._runner, self.port = await serve(app, self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_subscription(
        self,
        sub_id: str,
        *,
        user_id: int,
        tier: str,
        customer: str,
        period_start: int,
        period_end: int,
        status: str = "active",
        cancel_at_period_end: bool = False,
    ) -> dict[str, Any]:
        """A subscription in the current API's shape (the period lives on its items)."""
        self.customers.add(customer)
        self.subscriptions[sub_id] = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "cancel_at_period_end": cancel_at_period_end,
            "metadata": {"telegram_user_id": str(user_id), "tier": tier},
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": f"si_{sub_id}",
                        "object": "subscription_item",
                        "current_period_start": period_start,
                        "current_period_end": period_end,
                        "price": {"id": f"price_{tier}", "object": "price"},
                    }
                ],
                "has_more": False,
            },
        }
        return self.subscriptions[sub_id]

    def pay_invoice(self, invoice_id: str, payment_intent: str, amount: int) -> dict[str, Any]:
        """An invoice paid by `payment_intent`: its invoice payment, as the current API has it."""
        self.invoice_payments[payment_intent] = {
            "id": f"inpay_{next(self._ids)}",
            "object": "invoice_payment",
            "amount_paid": amount,
            "amount_requested": amount,
            "currency": "usd",
            "invoice": invoice_id,
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": payment_intent},
            "status": "paid",
        }
        return self.invoice_payments[payment_intent]

    # -- handlers ------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, message: str, param: str | None = None) -> web.Response:
        code = "resource_missing" if status == 404 else "parameter_missing"
        error = {"type": "invalid_request_error", "message": message, "code": code, "param": param}
        return web.json_response({"error": error}, status=status)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {SECRET_KEY}"

    async def _params(self, request: web.Request, what: str) -> dict[str, Any]:
        params = nested(dict(await request.post())) if request.can_read_body else {}
        self.requests.append((request.method, what, params))
        return params

    async def _price(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Invalid API Key provided")
        await self._params(request, "prices.retrieve")
        found = self.prices.get(request.match_info["id"])
        if found is None:
            return self._error(404, f"No such price: '{request.match_info['id']}'", "id")
        return web.json_response(found)

    async def _checkout(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Invalid API Key provided")
        params = await self._params(request, "checkout.sessions.create")
        for required in ("mode", "success_url", "line_items"):
            if required not in params:
                return self._error(400, f"Missing required param: {required}.", required)
        session_id = f"cs_test_{next(self._ids)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": params["mode"],
            "client_reference_id": params.get("client_reference_id"),
            "customer": params.get("customer"),
            "metadata": params.get("metadata", {}),
            "status": "open",
            "payment_status": "unpaid",
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "url": f"{self.url}/c/pay/{session_id}",
        }
        self.sessions[session_id] = {**session, "params": params}
        return web.json_response(session)

    async def _portal(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Invalid API Key provided")
        params = await self._params(request, "billing_portal.sessions.create")
        customer = params.get("customer")
        if customer not in self.customers:
            return self._error(404, f"No such customer: '{customer}'", "customer")
        portal_id = f"bps_{next(self._ids)}"
        return web.json_response(
            {
                "id": portal_id,
                "object": "billing_portal.session",
                "customer": customer,
                "return_url": params.get("return_url"),
                "url": f"{self.url}/p/session/{portal_id}",
            }
        )

    async def _subscription(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Invalid API Key provided")
        await self._params(request, "subscriptions.retrieve")
        sub = self.subscriptions.get(request.match_info["id"])
        if sub is None:
            return self._error(404, f"No such subscription: '{request.match_info['id']}'", "id")
        return web.json_response(sub)

    async def _cancel_subscription(self, request: web.Request) -> web.Response:
        """`DELETE /v1/subscriptions/{id}`: cancelled at once; the subscription comes back with
        status `canceled`. A subscription cancelled before cannot be cancelled again."""
        if not self._authorized(request):
            return self._error(401, "Invalid API Key provided")
        await self._params(request, "subscriptions.cancel")
        if self.cancel_unreachable and request.transport is not None:
            request.transport.abort()
            raise ConnectionResetError("the look-alike dropped the connection")
        sub = self.subscriptions.get(request.match_info["id"])
        if sub is None:
            return self._error(404, f"No such subscription: '{request.match_info['id']}'", "id")
        if sub["status"] == "canceled":
            return self._error(400, "A canceled subscription can only update its cancellation_details.")
        sub["status"] = "canceled"
        sub["canceled_at"] = int(time.time())
        return web.json_response(sub)

    async def _invoice_payments(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Invalid API Key provided")
        params = nested(dict(request.query))
        self.requests.append((request.method, "invoice_payments.list", params))
        payment = params.get("payment") or {}
        found = self.invoice_payments.get(payment.get("payment_intent", ""))
        data = [found] if found is not None and payment.get("type") == "payment_intent" else []
        return web.json_response(
            {"object": "list", "data": data, "has_more": False, "url": "/v1/invoice_payments"}
        )

    async def _pay_page(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.Response(status=404, text="no such checkout session")
        return web.Response(
            content_type="text/html",
            text=f"<!doctype html><title>Stripe Checkout</title><h1 id='checkout'>Pay {session['id']}</h1>",
        )
