"""The "🖼 Chart image" button under an alert, pressed through the real Dispatcher and the Telegram
look-alike: a PNG of the alert's own symbol and hour comes back as a reply, once per press, at
most one per user every 3 s; a forged or unknown alert, an alert the plan does not show yet and
an hour without candles are answered with their reason, in the user's language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.alert_message import render_alert
from core.alerts import AlertType
from core.clock import ManualClock
from core.settings import Settings
from core.tiers import Tier
from db import alerts as alerts_db
from db.candles import alert_hour_minutes
from tests.bot_harness import RunningBot, running_bot, seed_symbols
from tests.fakes.telegram_api import Call, Upload, png_size
from tests.miniapp_harness import add_alert, add_minutes

HOUR = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
DETECTED = HOUR + timedelta(minutes=7, seconds=30)
NOW = HOUR + timedelta(minutes=40)
USER = 5_100_001
ALERT_MESSAGE = 4242  # the alert message the button sits under
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool, redis: Redis) -> AsyncIterator[RunningBot]:
    await seed_symbols(db)
    async with running_bot(settings, db, redis, clock=ManualClock(NOW)) as running:
        yield running


async def seed_hour(db: asyncpg.Pool) -> tuple[int, int]:
    """BTC and ETH minutes in three hours, at far apart prices; a BTC and an ETH alert in the middle one."""
    await add_minutes(db, "BTCUSDT", HOUR - timedelta(hours=1), 180, price=97_000.0)
    await add_minutes(db, "ETHUSDT", HOUR - timedelta(hours=1), 180, price=3_000.0)
    btc = await add_alert(db, "BTCUSDT", DETECTED, ratio=3.33)
    eth = await add_alert(db, "ETHUSDT", DETECTED + timedelta(minutes=2), ratio=4.1)
    return btc, eth


async def chart_data(app: RunningBot, alert_id: int, *, locale: str = "en", tier: Tier = Tier.PRO) -> str:
    """The Chart button's callback data on the alert as the delivery sends it."""
    alert = await alerts_db.get_alert(app.pool, alert_id)
    assert alert is not None
    rendered = render_alert(
        alert, i18n=app.dp["i18n"], locale=locale, tier=tier, private=True, webapp_url=None
    )
    assert rendered.keyboard is not None
    buttons = [b for row in rendered.keyboard.inline_keyboard for b in row]
    chart = next(b for b in buttons if b.callback_data and b.callback_data.startswith("chart:"))
    assert chart.text == {"en": "🖼 Chart image", "ru": "🖼 Картинка графика"}[locale]
    assert chart.callback_data is not None and len(chart.callback_data.encode()) <= 64
    return chart.callback_data


async def press(app: RunningBot, data: str, *, language: str = "en") -> tuple[Call, list[Call]]:
    """Press the button under the alert message; the answer and the photos it brought."""
    before = len(app.tg.calls_to("sendPhoto", USER))
    answer = await app.press(USER, data, language_code=language, message_id=ALERT_MESSAGE)
    return answer, app.tg.calls_to("sendPhoto", USER)[before:]


def photo_of(call: Call) -> Upload:
    photo = call.params["photo"]
    assert isinstance(photo, Upload)
    return photo


def answer_text(answer: Call) -> str:
    return str(answer.params.get("text", ""))


async def test_the_chart_button_replies_with_a_png_of_the_alerts_own_symbol_and_hour(app: RunningBot) -> None:
    btc, _ = await seed_hour(app.pool)
    await app.add_user(USER, tier="pro")
    answer, photos = await press(app, await chart_data(app, btc))
    assert answer_text(answer) == ""  # the photo is the answer; the spinner just stops
    assert len(photos) == 1
    png = photo_of(photos[0])
    assert png.data.startswith(PNG_SIGNATURE)
    assert png_size(png.data) == (1100, 660)
    assert 10_000 < len(png.data) < 1_000_000
    caption = str(photos[0].params["caption"])
    assert caption.startswith("BTCUSDT, 2026-03-10 14:00–15:00 UTC: 1-minute candles")
    assert "the alert at 14:07 (3.33×)" in caption
    reply: dict[str, Any] = photos[0].params["reply_parameters"]
    assert reply["message_id"] == ALERT_MESSAGE  # a reply to the alert it was asked from


async def test_the_charted_minutes_are_the_alerts_symbol_and_hour_only(app: RunningBot) -> None:
    btc, eth = await seed_hour(app.pool)
    minutes = await alert_hour_minutes(app.pool, btc)
    assert [c.open_time for c in minutes] == [HOUR + timedelta(minutes=m) for m in range(60)]
    assert all(c.low > 96_000 and c.high < 98_000 for c in minutes)  # BTC's prices, never ETH's
    eth_minutes = await alert_hour_minutes(app.pool, eth)
    assert [c.open_time for c in eth_minutes] == [c.open_time for c in minutes]
    assert all(c.low > 2_000 and c.high < 4_000 for c in eth_minutes)
    assert await alert_hour_minutes(app.pool, 999_999) == []


async def test_the_chart_is_in_the_users_time_zone_and_language(app: RunningBot) -> None:
    btc, _ = await seed_hour(app.pool)
    await app.add_user(USER, tier="pro", language="ru")
    await app.pool.execute("UPDATE user_settings SET timezone = 'Europe/Berlin' WHERE user_id = $1", USER)
    _answer, photos = await press(app, await chart_data(app, btc, locale="ru"), language="ru")
    caption = str(photos[0].params["caption"])
    assert caption.startswith("BTCUSDT, 2026-03-10 15:00–16:00 Europe/Berlin: минутные свечи")
    assert "15:07 (3.33×)" in caption


async def test_a_forged_or_unknown_alert_is_answered_with_its_reason(app: RunningBot) -> None:
    await app.add_user(USER, tier="pro")
    for data in ("chart:abc", "chart:-1", "chart:0", "chart:99999999999999999999", "chart:７"):
        answer, photos = await press(app, data)
        assert answer_text(answer) == "That button has expired.", data
        assert photos == []
        app.clock.advance(5)
    answer, photos = await press(app, "chart:999999")
    assert answer_text(answer) == "That alert no longer exists."
    assert str(answer.params.get("show_alert")).lower() == "true"
    assert photos == []


async def test_an_alert_the_plan_does_not_show_yet_gets_no_chart(app: RunningBot) -> None:
    await add_minutes(app.pool, "BTCUSDT", HOUR, 45, price=97_000.0)
    recent = await add_alert(app.pool, "BTCUSDT", NOW - timedelta(minutes=2))  # free: shown at +15 min
    update = await add_alert(app.pool, "BTCUSDT", DETECTED, AlertType.HALF_UPDATE)  # elite only
    await app.add_user(USER, tier="free")
    for alert_id in (recent, update):
        answer, photos = await press(app, f"chart:{alert_id}")
        assert answer_text(answer) == "That alert is not available on your plan."
        assert photos == []
        app.clock.advance(5)
    app.clock.advance(timedelta(minutes=15))  # now the free plan shows the spike
    _answer, photos = await press(app, f"chart:{recent}")
    assert len(photos) == 1


async def test_an_hour_without_candles_says_so(app: RunningBot) -> None:
    sol = await add_alert(app.pool, "SOLUSDT", DETECTED)
    await app.add_user(USER, tier="pro")
    answer, photos = await press(app, f"chart:{sol}")
    assert answer_text(answer) == "No 1-minute candles of SOLUSDT are stored for 14:00–15:00 UTC."
    assert photos == []
    app.clock.advance(5)
    await app.pool.execute("UPDATE users SET language = 'ru' WHERE id = $1", USER)
    answer, photos = await press(app, f"chart:{sol}", language="ru")
    assert answer_text(answer) == "Минутных свечей SOLUSDT за 14:00–15:00 UTC нет."
    assert photos == []


async def test_one_chart_per_user_every_three_seconds(app: RunningBot) -> None:
    btc, eth = await seed_hour(app.pool)
    await app.add_user(USER, tier="pro")
    _answer, photos = await press(app, f"chart:{btc}")
    assert len(photos) == 1
    for _ in range(5):  # a tapping user: answered, nothing drawn
        answer, photos = await press(app, f"chart:{eth}")
        assert answer_text(answer) == "One chart every 3 seconds, please. Try again in a moment."
        assert photos == []
    app.clock.advance(2.9)
    answer, photos = await press(app, f"chart:{eth}")
    assert photos == []
    app.clock.advance(3)
    _answer, photos = await press(app, f"chart:{eth}")
    assert len(photos) == 1
    assert str(photos[0].params["caption"]).startswith("ETHUSDT, ")
    await app.pool.execute("UPDATE users SET language = 'ru' WHERE id = $1", USER)
    answer, _photos = await press(app, f"chart:{btc}", language="ru")
    assert answer_text(answer) == "Не больше одного графика в 3 секунды. Попробуйте чуть позже."
    assert len(app.tg.calls_to("sendPhoto", USER)) == 2


async def test_a_redelivered_press_sends_no_second_photo(app: RunningBot) -> None:
    btc, _ = await seed_hour(app.pool)
    await app.add_user(USER, tier="pro")
    _answer, photos = await press(app, f"chart:{btc}")
    assert len(photos) == 1
    query = next(
        u for u in app.tg.calls_to("answerCallbackQuery") if u.params.get("callback_query_id") is not None
    ).params["callback_query_id"]
    app.clock.advance(60)  # past the cooldown: only the press's own record stops it
    app.tg.push_update(
        {
            "callback_query": {
                "id": query,
                "from": {"id": USER, "is_bot": False, "first_name": "Trader", "language_code": "en"},
                "chat_instance": str(USER),
                "data": f"chart:{btc}",
                "message": {
                    "message_id": ALERT_MESSAGE,
                    "date": int(NOW.timestamp()),
                    "chat": {"id": USER, "type": "private", "first_name": "Trader"},
                    "text": "…",
                },
            }
        }
    )
    await app.tg.wait_for(lambda calls: len([c for c in calls if c.method == "answerCallbackQuery"]) >= 2)
    assert len(app.tg.calls_to("sendPhoto", USER)) == 1


async def test_a_refused_photo_is_answered_and_the_next_press_works(app: RunningBot) -> None:
    btc, _ = await seed_hour(app.pool)
    await app.add_user(USER, tier="pro")
    app.tg.fail("sendPhoto", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    answer, _photos = await press(app, f"chart:{btc}")
    assert answer_text(answer) == "The chart could not be sent. Try again later."
    assert app.tg.delivered_to(USER) == []
    app.clock.advance(3)
    _answer, photos = await press(app, f"chart:{btc}")
    assert len(app.tg.delivered_to(USER)) == 1 and photo_of(photos[-1]).data.startswith(PNG_SIGNATURE)
