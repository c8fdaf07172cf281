"""POST /api/plans/{tier}/invoice: a Stars invoice link for the Mini App's `openInvoice`.

Body (optional JSON): `{"kind": "subscription" | "pass"}`, default "subscription". Answer:
`{"invoiceLink": "https://t.me/$..."}`. The caller is the Telegram user of the Mini App's initData
(`Authorization: tma <initData>`, validated by `webapp.auth` like every /api call); the invoice's payload
names that user, so the pre-checkout check and the payment recording are the bot's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import orjson
from aiogram.exceptions import TelegramAPIError
from aiogram.types import LabeledPrice
from aiohttp import web

from core.errors import BadInput, Conflict, NotFound
from core.i18n import create_i18n
from core.invoices import stars_invoice
from core.plans import PAID_TIERS, Kind
from core.tiers import Tier
from webapp import keys
from webapp.api.plans import renewing_tier, stars_offer
from webapp.auth import require_user
from webapp.keys import INVOICE_BOT, INVOICE_I18N
from webapp.telegram import telegram_bot

log = logging.getLogger(__name__)


async def plan_invoice(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    bot = request.app.get(INVOICE_BOT)
    if bot is None:
        raise NotFound("payments are off (BOT_TOKEN is not set)")
    user = require_user(request)
    user_id, locale = user.id, user.language
    try:
        tier = Tier(request.match_info["tier"])
    except ValueError:
        tier = Tier.FREE
    if tier not in PAID_TIERS:
        raise NotFound(f"no plan {request.match_info['tier']!r}; plans are pro and elite")
    kind = Kind.SUBSCRIPTION
    body = await request.read()
    if body:
        try:
            raw = orjson.loads(body)
            kind = Kind(raw.get("kind", "subscription")) if isinstance(raw, dict) else Kind("")
        except (orjson.JSONDecodeError, ValueError):
            raise BadInput('body must be {"kind": "subscription" | "pass"}') from None
    sale = stars_offer(request, user, tier, kind, await renewing_tier(request, user))
    if not sale.on_sale:
        raise Conflict(f"{tier.value} ({kind.value}) is not on sale for this account: {sale.value}")
    i18n = request.app[INVOICE_I18N]
    try:
        with i18n.context(), i18n.use_locale(locale):
            invoice = stars_invoice(settings, user_id, tier, kind)
        prices = [LabeledPrice(label=invoice.title, amount=invoice.price)]
        link = await bot.create_invoice_link(**invoice.link_fields(), prices=prices)
    except TelegramAPIError as exc:
        log.warning("createInvoiceLink failed", extra={"user_id": user_id, "error": str(exc)})
        raise web.HTTPBadGateway(reason="Telegram did not make the invoice") from None
    return web.json_response({"invoiceLink": link})


async def invoice_ctx(app: web.Application) -> AsyncIterator[None]:
    """The Bot the endpoint calls createInvoiceLink with (only when BOT_TOKEN is set)."""
    bot = telegram_bot(app[keys.SETTINGS])
    if bot is None:
        yield
        return
    app[INVOICE_BOT] = bot
    app[INVOICE_I18N] = create_i18n()
    try:
        yield
    finally:
        await app[INVOICE_BOT].session.close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(invoice_ctx)
    app.router.add_post("/api/plans/{tier}/invoice", plan_invoice)
