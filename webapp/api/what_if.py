"""GET /api/what-if: how often a spike multiple and minimum volume would have fired over the last
30 days, and the median move after 1 h of those alerts (`db.what_if`); the settings page asks it
whenever the thresholds change. Cached five minutes per thresholds and language."""

from __future__ import annotations

from aiohttp import web

from core.errors import BadInput
from core.what_if import what_if_text
from db.what_if import estimate
from webapp import keys
from webapp.api.models import WhatIfAnswer, WhatIfQuery
from webapp.api.spec import API, parse_query
from webapp.api.viewer import viewer_locale
from webapp.keys import I18N

CACHE_SECONDS = 300


@API.route("GET", "/api/what-if", query=WhatIfQuery, response=WhatIfAnswer, errors=(400,), tag="settings")
async def what_if(request: web.Request) -> web.Response:
    """Alerts a day and median move after 1 h these thresholds would have given (last 30 days)."""
    query = parse_query(request, WhatIfQuery)
    app = request.app
    settings = app[keys.SETTINGS]
    multiple = settings.spike_multiple if query.multiple is None else query.multiple
    volume = settings.spike_min_quote_volume if query.min_volume is None else query.min_volume
    if multiple < settings.spike_multiple or volume < settings.spike_min_quote_volume:
        raise BadInput(
            {"message": "thresholds start at the default", "multiple": settings.spike_multiple,
             "minVolume": settings.spike_min_quote_volume}
        )  # fmt: skip
    locale = viewer_locale(request)

    async def build() -> bytes:
        alerts, days, rate, median, known = await estimate(
            app[keys.POOL],
            app[keys.CLOCK].now(),
            multiple,
            volume,
            (settings.spike_multiple, settings.spike_min_quote_volume),
        )
        text = what_if_text(rate, days, median, lambda msgid: app[I18N].gettext(msgid, locale=locale))
        answer = WhatIfAnswer(
            multiple=multiple,
            min_volume=volume,
            days=round(days, 2),
            alerts=alerts,
            alerts_per_day=None if rate is None else round(rate, 2),
            median1h=median,
            known=known,
            text=text,
        )
        return answer.model_dump_json(by_alias=True).encode()

    body = await app[keys.ANSWERS].get(f"what-if:{multiple!r}:{volume!r}:{locale}", CACHE_SECONDS, build)
    return web.Response(body=body, content_type="application/json")
