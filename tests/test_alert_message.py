"""An alert as a Telegram message, without I/O: delays from the tier table, the simulated
marker, escaping, and callback data within Telegram's 64 bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from bot.alert_message import render_alert
from bot.i18n import create_i18n
from core.alerts import SIMULATED_MARKER, Alert, AlertType, format_message
from core.i18n import SUPPORTED_LOCALES
from core.tiers import TIERS, Tier
from tests.bot_harness import compile_catalogs
from tests.telegram_html import html_problems

T = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)


def alert(**changes: object) -> Alert:
    fields: dict[str, object] = {
        "symbol": "BTCUSDT",
        "asset": "BTC",
        "alert_type": AlertType.SPIKE,
        "hour": T.replace(minute=0, second=0),
        "detected_at": T,
        "current_volume": 5e9,
        "previous_volume": 1.5e9,
        "ratio": 3.33,
        "price": 97123.4,
        "funding_rate": 0.0001,
        "id": 7,
    }
    fields.update(changes)
    return Alert(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def i18n():
    compile_catalogs()
    return create_i18n()


def render(i18n, item: Alert, *, tier: Tier = Tier.ELITE, locale: str = "en", private: bool = True):
    return render_alert(
        item, i18n=i18n, locale=locale, tier=tier, private=private, webapp_url="https://volspike.test"
    )


def test_each_tier_is_told_its_own_delay_from_the_tier_table(i18n):
    assert "late" not in render(i18n, alert(), tier=Tier.ELITE).text
    assert "This alert is 5 minutes late. /status" in render(i18n, alert(), tier=Tier.PRO).text
    assert "This alert is 15 minutes late. /status" in render(i18n, alert(), tier=Tier.FREE).text
    ru = render(i18n, alert(), tier=Tier.PRO, locale="ru").text
    assert "задержкой 5 мин." in ru


def test_the_late_note_follows_a_changed_tier_table(i18n, monkeypatch: pytest.MonkeyPatch):
    from dataclasses import replace
    from datetime import timedelta

    monkeypatch.setitem(TIERS, Tier.PRO, replace(TIERS[Tier.PRO], alert_delay=timedelta(minutes=2)))
    assert "This alert is 2 minutes late." in render(i18n, alert(), tier=Tier.PRO).text


def test_a_simulated_alert_says_so_in_every_form_and_language(i18n):
    fake = alert(simulated=True)
    assert format_message(fake).startswith(f"{SIMULATED_MARKER} BTC hourly volume")
    assert fake.to_json_dict()["simulated"] is True
    assert Alert.from_json(fake.to_json()).simulated is True
    for locale in SUPPORTED_LOCALES:
        for kind in AlertType:
            text = render(i18n, alert(simulated=True, alert_type=kind), locale=locale).text
            assert text.startswith(f"<b>{SIMULATED_MARKER} "), (locale, kind, text)


def test_a_real_alert_has_no_marker_and_keeps_the_original_payload(i18n):
    real = alert()
    assert SIMULATED_MARKER not in format_message(real)
    assert SIMULATED_MARKER not in render(i18n, real).text
    assert "simulated" not in orjson.loads(real.to_json())
    assert Alert.from_json(real.to_json()).simulated is False


def test_the_asset_is_html_escaped(i18n):
    for locale in SUPPORTED_LOCALES:
        text = render(i18n, alert(asset="A<B>&C", symbol="A<B>&CUSDT"), locale=locale, tier=Tier.FREE).text
        assert "A&lt;B&gt;&amp;C" in text and html_problems(text) == [], locale


def test_a_non_ascii_symbol_gets_a_mute_button_within_64_bytes(i18n):
    rendered = render(i18n, alert(symbol="我踏马来了USDT", asset="我踏马来了"))
    assert rendered.keyboard is not None
    data = [b.callback_data for row in rendered.keyboard.inline_keyboard for b in row if b.callback_data]
    assert data == ["chart:7", "mute:我踏马来了USDT", "settings:open"]
    assert all(len(d.encode()) <= 64 for d in data)


def test_a_symbol_too_long_for_callback_data_gets_no_mute_button_rather_than_a_refused_message(i18n):
    long_symbol = "币" * 20 + "USDT"  # 64 bytes of UTF-8: with "mute:" over Telegram's limit
    rendered = render(i18n, alert(symbol=long_symbol, asset="币" * 20))
    assert rendered.keyboard is not None
    data = [b.callback_data for row in rendered.keyboard.inline_keyboard for b in row if b.callback_data]
    assert data == ["chart:7", "settings:open"]


def test_the_chart_image_button_carries_the_alert_id_within_64_bytes_in_private_chats_only(i18n):
    from bot.alert_message import alert_from_chart_callback

    def data(rendered) -> list[str]:
        markup = rendered.keyboard
        return [] if markup is None else [b.callback_data for row in markup.inline_keyboard for b in row]

    largest = alert(id=2**63 - 1)  # alerts.id is a bigint
    chart = [d for d in data(render(i18n, largest)) if d and d.startswith("chart:")]
    assert chart == [f"chart:{2**63 - 1}"] and len(chart[0].encode()) <= 64
    assert alert_from_chart_callback(chart[0]) == 2**63 - 1
    assert not any(d and d.startswith("chart:") for d in data(render(i18n, alert(), private=False)))
    assert not any(d and d.startswith("chart:") for d in data(render(i18n, alert(id=None))))
    labels = {locale: render(i18n, alert(), locale=locale).keyboard for locale in SUPPORTED_LOCALES}
    texts = {
        locale: next(b.text for row in k.inline_keyboard for b in row if b.callback_data == "chart:7")
        for locale, k in labels.items()
        if k is not None
    }
    assert texts["en"] == "🖼 Chart image" and texts["ru"] == "🖼 Картинка графика"
    assert len(set(texts.values())) == 5
