"""GET /api/record: the public track record of the last 30 or 90 days (`db.track_record`), the
figures the /record page renders. Public: the same for every caller, cached for a minute.

Groupings: all SPIKEs, by volume ratio, by rank (how unusual the hour is for its time of day,
from the alert's context), by the hour's taker-buy share and by liquidity (the hour's quote
volume at the alert); and the early warnings (EARLY) as a group of their own, so a trader sees
whether the earlier, noisier signal is worth it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from itertools import pairwise

import asyncpg
from aiohttp import web

from core.alerts import format_usd
from core.i18n import I18n
from db import track_record
from webapp import keys
from webapp.api.models import RecordBucket, RecordGrouping, RecordHorizon, RecordPage, RecordQuery
from webapp.api.spec import API, parse_query
from webapp.api.viewer import viewer_locale
from webapp.keys import I18N

SMALL_SAMPLE = 30
CACHE_SECONDS = 60


def _bounds(bounds: list[str]) -> list[str]:
    """Labels of the buckets cut at `bounds`: `< a`, `a–b`, …, `≥ z`."""
    return [
        f"< {bounds[0]}",
        *(f"{low}–{high}" for low, high in pairwise(bounds)),
        f"≥ {bounds[-1]}",
    ]


def _labels(i18n: I18n, locale: str) -> dict[str, tuple[str, dict[int, tuple[str, str]]]]:
    """Per grouping: its title and, per bucket ordinal, the bucket's key and label."""

    def _(text: str) -> str:
        return i18n.gettext(text, locale=locale)

    ratio = _bounds(["3×", "4×", "6×", "10×"])[1:]  # SPIKEs start at the default 3×
    taker = _bounds(["40 %", "50 %", "60 %"])
    volume = _bounds([format_usd(v) for v in (1e7, 5e7, 2.5e8)])
    return {
        "all": (_("All alerts"), {0: ("all", _("All alerts"))}),
        "ratio": (_("By volume ratio"), {i: (f"ratio-{i}", label) for i, label in enumerate(ratio)}),
        "rank": (
            _("By rank for the hour of the day"),
            {
                -1: ("rank-unknown", _("unknown")),
                0: ("rank-0", _("top {percent}").format(percent="1 %")),
                1: ("rank-1", _("top {percent}").format(percent="1–5 %")),
                2: ("rank-2", _("top {percent}").format(percent="5–20 %")),
                3: ("rank-3", _("below the top {percent}").format(percent="20 %")),
            },
        ),
        "early": (
            _("Early warnings (projections)"),
            {0: ("early", _("All early warnings"))},
        ),
        "taker": (
            _("By taker-buy share of the hour"),
            {
                -1: ("taker-unknown", _("unknown")),
                **{i: (f"taker-{i}", label) for i, label in enumerate(taker)},
            },
        ),
        "liquidity": (
            _("By the hour's volume"),
            {i: (f"liquidity-{i}", label) for i, label in enumerate(volume)},
        ),
    }


async def build_record(pool: asyncpg.Pool, now: datetime, days: int, i18n: I18n, locale: str) -> RecordPage:
    start = now - timedelta(days=days)
    keys_ = list(track_record.GROUPINGS)
    results = await asyncio.gather(*(track_record.grouped(pool, key, start, now) for key in keys_))
    labels = _labels(i18n, locale)
    groupings = []
    for key, rows in zip(keys_, results, strict=True):
        title, names = labels[key]
        buckets = [
            RecordBucket(
                key=names[row.bucket][0],
                label=names[row.bucket][1],
                alerts=row.alerts,
                small_sample=row.alerts < SMALL_SAMPLE,
                horizons=[
                    RecordHorizon(
                        minutes=minutes,  # type: ignore[arg-type]  # 15, 60 or 240 (track_record)
                        known=stats.known,
                        p25=stats.p25,
                        median=stats.median,
                        p75=stats.p75,
                        big_share=stats.big_share,
                    )
                    for minutes, stats in row.horizons.items()
                ],
            )
            for row in rows
        ]
        groupings.append(RecordGrouping(key=key, title=title, buckets=buckets))  # type: ignore[arg-type]
    return RecordPage(
        days=days,  # type: ignore[arg-type]  # 30 or 90 (RecordQuery)
        start=start,
        end=now,
        big_move=track_record.BIG_MOVE,
        small_sample=SMALL_SAMPLE,
        groupings=groupings,
    )


async def record_json(request: web.Request, days: int) -> bytes:
    """The record as JSON, shared a minute by every caller of the same language."""
    locale = viewer_locale(request)
    app = request.app

    async def build() -> bytes:
        page = await build_record(app[keys.POOL], app[keys.CLOCK].now(), days, app[I18N], locale)
        return page.model_dump_json(by_alias=True).encode()

    return await app[keys.ANSWERS].get(f"record:{days}:{locale}", CACHE_SECONDS, build)


@API.route(
    "GET", "/api/record", query=RecordQuery, response=RecordPage, errors=(400,), auth="public", tag="record"
)
async def record(request: web.Request) -> web.Response:
    """The public track record: every SPIKE of the last 30 or 90 days, grouped, with its outcomes;
    and the early warnings (EARLY) of the same days as a group of their own."""
    query = parse_query(request, RecordQuery)
    body = await record_json(request, query.days)
    return web.Response(body=body, content_type="application/json")
