"""An alert's hour as a PNG: the hour's 1-minute candles with quote-volume bars below and a line
at the minute the alert fired, titled "BTCUSDT 14:00–15:00 UTC · 3.33×" in the reader's zone.

`render_chart` is pure and blocking (matplotlib's object API on the Agg canvas, no pyplot, no
display); `ChartRenderer` runs it off the event loop, one image at a time on its own thread, and
refuses new work while `MAX_WAITING` images wait, so a crowd of presses cannot queue up CPU.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from core.number_format import format_price, format_ratio, format_usd
from core.timezones import display_timezone
from db.candles import Candle

WIDTH, HEIGHT, DPI = 10.0, 6.0, 110  # 1100 × 660 px: Telegram shows it without cropping
UP, DOWN, MARK = "#26a69a", "#ef5350", "#ff9800"
MAX_WAITING = 8


@dataclass(frozen=True, slots=True)
class ChartRequest:
    symbol: str
    hour: datetime  # start of the alert's hour (UTC)
    detected_at: datetime
    ratio: float
    candles: Sequence[Candle]  # the hour's stored minutes, oldest first
    zone: str = "UTC"


def hour_label(hour: datetime, zone: str) -> str:
    """ "14:00–15:00 UTC": the hour in the reader's zone."""
    tz = ZoneInfo(zone)
    start, end = hour.astimezone(tz), (hour + timedelta(hours=1)).astimezone(tz)
    return f"{start:%H:%M}–{end:%H:%M} {display_timezone(zone)}"


def chart_title(request: ChartRequest) -> str:
    return f"{request.symbol} {hour_label(request.hour, request.zone)} · {format_ratio(request.ratio)}"


def _minute(request: ChartRequest, when: datetime) -> float:
    return (when - request.hour).total_seconds() / 60


def render_chart(request: ChartRequest) -> bytes:
    """The PNG bytes of the chart (blocking: call it through `ChartRenderer`)."""
    tz = ZoneInfo(request.zone)
    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    FigureCanvasAgg(figure)
    # Fixed margins (wide enough for "$0.00001234" and "$950.00M"): a layout engine would double
    # the drawing time.
    prices, volumes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1), gridspec_kw={"hspace": 0.06})
    figure.subplots_adjust(left=0.11, right=0.98, top=0.93, bottom=0.07)
    xs = [_minute(request, c.open_time) + 0.5 for c in request.candles]
    colours = [UP if c.close >= c.open else DOWN for c in request.candles]
    bodies = [
        abs(c.close - c.open) or (c.high - c.low) / 50 or c.close / 1e5 for c in request.candles
    ]  # a doji still shows a sliver
    prices.vlines(xs, [c.low for c in request.candles], [c.high for c in request.candles], colors=colours)
    prices.bar(xs, bodies, width=0.7, bottom=[min(c.open, c.close) for c in request.candles], color=colours)
    volumes.bar(xs, [c.quote_volume for c in request.candles], width=0.7, color=colours)
    alert_x = _minute(request, request.detected_at)
    local = request.detected_at.astimezone(tz)
    for axes in (prices, volumes):
        axes.axvline(alert_x, color=MARK, linestyle="--", linewidth=1.5)
        axes.grid(True, color="#e0e0e0", linewidth=0.6)
    prices.annotate(
        f"{local:%H:%M}",
        xy=(alert_x, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(4, -14),
        textcoords="offset points",
        color=MARK,
        fontweight="bold",
    )
    prices.set_title(chart_title(request), fontsize=14, fontweight="bold", loc="left")
    prices.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format_price(value)))
    volumes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format_usd(value)))
    volumes.set_xlim(0, 60)
    ticks = list(range(0, 61, 10))
    volumes.set_xticks(
        ticks, [f"{(request.hour + timedelta(minutes=m)).astimezone(tz):%H:%M}" for m in ticks]
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class ChartBusy(Exception):
    """Too many images are waiting to be drawn: the press is answered "try again"."""


class ChartRenderer:
    """Draws charts on one worker thread (matplotlib figures are not shared between threads, and
    one core is all a chart may take); at most `MAX_WAITING` wait their turn."""

    def __init__(self, max_waiting: int = MAX_WAITING) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._waiting = 0
        self._max_waiting = max_waiting

    async def render(self, request: ChartRequest) -> bytes:
        if self._waiting >= self._max_waiting:
            raise ChartBusy
        if self._executor is None:  # threads start on first use, never at import
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chart")
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, render_chart, request)
        finally:
            self._waiting -= 1
