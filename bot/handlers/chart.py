"""The "🖼 Chart image" button under an alert: the alert's own hour of 1-minute candles as a picture,
sent as a reply to the alert.

The callback data carries only the alert id; the symbol and the hour are read from that alert's
row (`db.candles.alert_hour_minutes` joins on it), so the image is always of the alert's own
symbol and hour. A press is served at most once (a redelivered press sends nothing), a user has at
most one chart per `COOLDOWN`, and a forged id, an alert the user's plan does not show yet, or an
hour with no stored minutes is answered with its reason.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

import asyncpg
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BufferedInputFile, CallbackQuery, Message, ReplyParameters
from aiogram.utils.i18n import gettext as _
from redis.asyncio import Redis

from bot.alert_message import CHART_PREFIX, alert_from_chart_callback
from bot.chart_image import ChartBusy, ChartRenderer, ChartRequest, hour_label
from bot.models import BotUser
from core.clock import Clock, ms_from_utc
from core.number_format import format_ratio
from core.redis_names import RedisNames
from core.tiers import feed_window
from db import alerts as alerts_db
from db import candles as candles_db
from db import user_settings as settings_db

log = logging.getLogger(__name__)

COOLDOWN = timedelta(seconds=3)
PRESS_TTL = timedelta(days=1)  # longer than Telegram keeps redelivering an unanswered update

# KEYS[1] the user's last chart time; ARGV now (ms), cooldown (ms). 1: go (time recorded), 0: too soon.
_COOLDOWN = """
local last = tonumber(redis.call('GET', KEYS[1]))
local now = tonumber(ARGV[1])
if last and now - last < tonumber(ARGV[2]) and now >= last then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2] + 60000)
return 1
"""


async def _claim_press(redis: Redis, names: RedisNames, query_id: str) -> bool:
    return bool(
        await redis.set(names.chart_press(query_id), 1, nx=True, px=int(PRESS_TTL.total_seconds() * 1000))
    )


async def _cool_enough(redis: Redis, names: RedisNames, user_id: int, clock: Clock) -> bool:
    now = ms_from_utc(clock.now())
    cooldown = int(COOLDOWN.total_seconds() * 1000)
    return bool(await redis.eval(_COOLDOWN, 1, names.chart_cooldown(user_id), now, cooldown))


async def send_chart(
    callback: CallbackQuery,
    user: BotUser,
    bot: Bot,
    pool: asyncpg.Pool,
    redis: Redis,
    names: RedisNames,
    clock: Clock,
    charts: ChartRenderer,
) -> None:
    alert_id = alert_from_chart_callback(callback.data)
    if alert_id is None or not isinstance(callback.message, Message):
        await callback.answer(_("That button has expired."), show_alert=True)
        return
    if not await _claim_press(redis, names, callback.id):
        await callback.answer()  # a redelivered press: the first one was served
        return
    if not await _cool_enough(redis, names, user.id, clock):
        await callback.answer(_("One chart every 3 seconds, please. Try again in a moment."))
        return
    alert = await alerts_db.get_alert(pool, alert_id)
    window = feed_window(user.tier, clock.now())
    if alert is None:
        await callback.answer(_("That alert no longer exists."), show_alert=True)
        return
    if alert.detected_at > window.visible_until or alert.alert_type.value not in window.types:
        await callback.answer(_("That alert is not available on your plan."), show_alert=True)
        return
    candles = await candles_db.alert_hour_minutes(pool, alert_id)
    zone = (await settings_db.get(pool, user.id)).timezone
    hour = hour_label(alert.hour, zone)
    if not candles:
        note = _("No 1-minute candles of {symbol} are stored for {hour}.")
        await callback.answer(note.format(symbol=alert.symbol, hour=hour), show_alert=True)
        return
    request = ChartRequest(alert.symbol, alert.hour, alert.detected_at, alert.ratio, candles, zone)
    try:
        png = await charts.render(request)
    except ChartBusy:
        await callback.answer(_("Many charts are being drawn right now. Try again in a few seconds."))
        return
    alert_time = f"{alert.detected_at.astimezone(ZoneInfo(zone)):%H:%M}"
    caption = _(
        "{symbol}, {date} {hour}: 1-minute candles and volume. The dashed line marks the alert at "
        "{time} ({ratio})."
    ).format(
        symbol=alert.symbol,
        date=f"{alert.hour.astimezone(ZoneInfo(zone)):%Y-%m-%d}",
        hour=hour,
        time=alert_time,
        ratio=format_ratio(alert.ratio),
    )
    try:
        await bot.send_photo(
            callback.message.chat.id,
            BufferedInputFile(png, filename=f"{alert.symbol}-{alert.hour:%Y%m%d-%H}.png"),
            caption=caption,
            reply_parameters=ReplyParameters(
                message_id=callback.message.message_id, allow_sending_without_reply=True
            ),
        )
    except TelegramAPIError as error:
        log.warning("chart not sent", extra={"alert_id": alert_id, "user_id": user.id, "error": str(error)})
        await callback.answer(_("The chart could not be sent. Try again later."), show_alert=True)
        return
    await callback.answer()


def build_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(send_chart, F.data.startswith(CHART_PREFIX))
    return router
