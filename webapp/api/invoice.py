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
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n
from aiohttp import web

from bot.i18n import create_i18n
from bot.payments.invoices import invoice_link
from bot.payments.plans import PAID_TIERS, Kind
from db import subscriptions as subscriptions_db
from volspike.entitlements import Entitlement, offer
from volspike.errors import BadInput, Conflict, NotFound
from volspike.tiers import Tier
from webapp import keys
from webapp.auth import require_user

log = logging.getLogger(__name__)

INVOICE_BOT = web.AppKey("invoice_bot", Bot)
INVOICE_I18N = web.AppKey("invoice_i18n", I18n)


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
    now = request.app[keys.CLOCK].now()
    found = await subscriptions_db.renewing_any(request.app[keys.POOL], user_id, now)
    renewing = found[0] if found else None
    sale = offer(
        Entitlement(user.tier, user.tier_expires_at),
        tier,
        now=now,
        subscription=kind is Kind.SUBSCRIPTION,
        renewing=Tier(renewing.tier) if renewing is not None else None,
    )
    if not sale.on_sale:
        raise Conflict(f"{tier.value} ({kind.value}) is not on sale for this account: {sale.value}")
    i18n = request.app[INVOICE_I18N]
    try:
        with i18n.context(), i18n.use_locale(locale):
            link = await invoice_link(bot, settings, user_id, tier, kind)
    except TelegramAPIError as exc:
        log.warning("createInvoiceLink failed", extra={"user_id": user_id, "error": str(exc)})
        raise web.HTTPBadGateway(reason="Telegram did not make the invoice") from None
    return web.json_response({"invoiceLink": link})


async def invoice_ctx(app: web.Application) -> AsyncIterator[None]:
    """The Bot the endpoint calls createInvoiceLink with (only when BOT_TOKEN is set)."""
    settings = app[keys.SETTINGS]
    if settings.bot_token is None:
        yield
        return
    from bot.app import build_bot

    app[INVOICE_BOT] = build_bot(settings)
    app[INVOICE_I18N] = create_i18n()
    try:
        yield
    finally:
        await app[INVOICE_BOT].session.close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(invoice_ctx)
    app.router.add_post("/api/plans/{tier}/invoice", plan_invoice)
