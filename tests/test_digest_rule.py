"""The burst digest's rule and words (core.digest, bot.delivery.digest): who is in a burst, the
order of the list, its length limit, and the message in every language (valid Telegram HTML)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.delivery.digest import render_digest
from bot.i18n import create_i18n
from core.digest import MAX_LISTED, WINDOW, BurstSpike, in_burst, ordered
from core.i18n import SUPPORTED_LOCALES
from db.deliveries import CLAIM_DUE
from tests.bot_harness import compile_catalogs
from tests.telegram_html import html_problems

AT = datetime(2026, 3, 2, 12, 7, 30, tzinfo=UTC)


def _spike(asset: str, ratio: float, rank: float | None = None, simulated: bool = False) -> BurstSpike:
    return BurstSpike(f"{asset}USDT", asset, ratio, 5e9, AT, rank_top_percent=rank, simulated=simulated)


@pytest.fixture(scope="module")
def i18n():
    compile_catalogs()
    return create_i18n()


@pytest.mark.parametrize(
    ("peers", "chained", "min_symbols", "expected"),
    [
        (2, False, 4, False),  # the third of the minute: a message of its own
        (3, False, 4, True),  # the fourth: the digest
        (0, True, 4, True),  # the burst goes on while the digest holds the previous one
        (9, True, 0, False),  # 0 turns the digest off
        (0, False, 1, True),  # N = 1: every SPIKE is a digest
    ],
)
def test_in_burst(peers: int, chained: bool, min_symbols: int, expected: bool) -> None:
    assert in_burst(peers=peers, chained=chained, min_symbols=min_symbols) is expected


def test_the_claim_counts_the_same_window_as_the_rule() -> None:
    assert CLAIM_DUE.count(f"interval '{int(WINDOW.total_seconds())} seconds'") == 2


def test_a_known_rank_first_then_the_ratio() -> None:
    spikes = [
        _spike("BTC", 9.0),
        _spike("ETH", 4.0, rank=5.0),
        _spike("SOL", 12.0),
        _spike("XRP", 3.0, rank=1.0),
    ]
    assert [s.asset for s in ordered(spikes)] == ["XRP", "ETH", "SOL", "BTC"]


def test_a_long_burst_lists_the_top_and_says_how_many_more(i18n) -> None:
    spikes = [_spike(f"S{i:02d}", 3.0 + i) for i in range(MAX_LISTED + 5)]
    text = render_digest(spikes, i18n=i18n, locale="en")
    lines = text.splitlines()
    assert lines[0] == f"<b>{MAX_LISTED + 5} symbols spiked within a minute</b>"
    assert len(lines) == 1 + MAX_LISTED + 1 and lines[-1] == "… and 5 more"
    assert lines[1].startswith(f"S{MAX_LISTED + 4:02d} ")  # the highest ratio first


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_the_digest_in_every_language_is_valid_html_with_the_count(i18n, locale: str) -> None:
    spikes = [_spike("BTC", 9.0, rank=3.0, simulated=True), _spike("A<B", 4.0), _spike("SOL", 5.0)]
    text = render_digest(spikes, i18n=i18n, locale=locale)
    assert not html_problems(text), text
    assert "3" in text.splitlines()[0] and "[SIMULATED]" in text.splitlines()[0]
    assert "A&lt;B" in text and "3%" in text
    if locale != "en":
        assert "spiked within a minute" not in text
