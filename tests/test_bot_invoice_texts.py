"""Invoice titles and descriptions within Telegram's limits in every language (sendInvoice and
createInvoiceLink: title 1-32 characters, description 1-255), whole: no word cut, no benefit
dropped. Driven by /subscribe and the pass buttons through the real dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.i18n import create_i18n
from core.clock import ManualClock
from core.i18n import SUPPORTED_LOCALES
from core.payment_texts import benefit_parts
from core.settings import Settings
from core.tiers import Tier
from tests.stars_harness import StarsBot, stars_bot

USER = 5170
TITLE_MAX, DESCRIPTION_MAX = 32, 255


@pytest.fixture
async def sb(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[StarsBot]:
    async with stars_bot(
        settings, db, redis, clock=ManualClock(datetime(2026, 3, 10, tzinfo=UTC))
    ) as running:
        yield running


@pytest.mark.parametrize("language", SUPPORTED_LOCALES)
async def test_every_invoice_fits_telegrams_limits_whole_in_every_language(sb: StarsBot, language: str):
    await sb.app.add_user(USER, language=language)
    await sb.app.send(USER, "/subscribe")
    await sb.app.press(USER, "pass:pro")
    await sb.app.press(USER, "pass:elite")
    invoices = sb.app.tg.calls_to("createInvoiceLink") + sb.app.tg.calls_to("sendInvoice", USER)
    assert len(invoices) == 4
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale(language):
        last = {tier: benefit_parts(tier)[-1] for tier in (Tier.PRO, Tier.ELITE)}
    for call in invoices:
        title, description = call.params["title"], call.params["description"]
        assert 1 <= len(title) <= TITLE_MAX, title
        assert title.startswith("VolSpike ") and "—" in title  # the plan and its kind, not a fallback
        assert 1 <= len(description) <= DESCRIPTION_MAX, description
        tier = Tier.ELITE if call.params["payload"].split(":")[2] == "elite" else Tier.PRO
        assert description.endswith(last[tier]), description  # every benefit, the last one whole
