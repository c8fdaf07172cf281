"""POST /api/plans/{tier}/invoice: a Stars invoice link for the Mini App's `openInvoice`.

Body (optional JSON): `{"kind": "subscription" | "pass"}`, default "subscription". Answer:
`{"invoiceLink": "https://t.me/$..."}`. The caller is the Telegram user of the Mini App's initData
(`Authorization: tma <initData>`), checked with aiogram's own validator; the invoice's payload
names that user, so the pre-checkout check and the payment recording are the bot's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import orjson
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n
from aiogram.utils.web_app import safe_parse_webapp_init_data
from aiohttp import web

from bot.i18n import create_i18n, pick_locale
from bot.payments.invoices import invoice_link
from bot.payments.plans import PAID_TIERS, Kind
from volspike.errors import BadInput, NotFound, Unauthorized
from volspike.settings import Settings
from volspike.tiers import Tier
from webapp import keys

log = logging.getLogger(__name__)

INVOICE_BOT = web.AppKey("invoice_bot", Bot)
INVOICE_I18N = web.AppKey("invoice_i18n", I18n)
INITDATA_MAX_AGE = 24 * 3600


def _payer(settings: Settings, header: str | None, now: float) -> tuple[int, str]:
    """(Telegram user id, locale) from `Authorization: tma <initData>`; Unauthorized otherwise."""
    if settings.bot_token is None or not header or not header.startswith("tma "):
        raise Unauthorized("Authorization: tma <initData> is required")
    try:
        data = safe_parse_webapp_init_data(settings.bot_token.get_secret_value(), header[4:])
    except ValueError:
        raise Unauthorized("initData signature is not valid") from None
    if data.user is None or now - data.auth_date.timestamp() > INITDATA_MAX_AGE:
        raise Unauthorized("initData is too old or has no user")
    return data.user.id, pick_locale(data.user.language_code)


async def plan_invoice(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    bot = request.app.get(INVOICE_BOT)
    if bot is None:
        raise NotFound("payments are off (BOT_TOKEN is not set)")
    user_id, locale = _payer(settings, request.headers.get("Authorization"), time.time())
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
