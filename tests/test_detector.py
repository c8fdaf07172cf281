"""The spike rule on real XRPUSDT volumes (5m candles split into streamed 1m klines) and on
hand-made edge cases, checked against a straightforward computation of hourly sums."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from core.alerts import Alert, AlertType
from core.clock import ms_from_utc, utc_from_ms
from ingest.detector import CLOSE_GRACE_MS, HeldBack, SpikeDetector
from ingest.parsers import Kline, MarkPrice

DATA = Path(__file__).parent / "data"
MIN = 60_000
HOUR = 3_600_000
H0 = 1_636_934_400_000  # 2021-11-15 00:00 UTC, the first hour of the XRP file


def kline(
    open_ms: int,
    q: float,
    *,
    closed: bool,
    event_ms: int | None = None,
    symbol: str = "XRPUSDT",
    close: float = 1.0,
    interval: str = "1m",
) -> Kline:
    span = MIN if interval == "1m" else HOUR
    return Kline(
        symbol=symbol,
        interval=interval,
        open_time_ms=open_ms,
        close_time_ms=open_ms + span - 1,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=q / close,
        quote_volume=q,
        trades=10,
        taker_buy_volume=0.0,
        taker_buy_quote=0.0,
        closed=closed,
        event_time_ms=event_ms if event_ms is not None else open_ms + (span if closed else span // 2),
    )


@dataclass(frozen=True)
class Frame:
    kline: Kline
    hour_ms: int
    hour_q_so_far: float  # the hour's quote volume once this frame is counted


def xrp_frames() -> Iterator[Frame]:
    """Each 5m candle → five 1m klines, each streamed as two partial updates and a close.

    Quote volume per 5m candle ≈ base volume × close, spread evenly over its minutes.
    """
    hour_ms, done = H0, 0.0
    with (DATA / "xrpusdt-perp-5m-2021-11-15.csv").open() as fh:
        for row in csv.DictReader(fh):
            start, close = int(row["open_time"]), float(row["close"])
            per_minute = float(row["volume"]) * close / 5
            for i in range(5):
                open_ms = start + i * MIN
                if open_ms - open_ms % HOUR != hour_ms:
                    hour_ms, done = open_ms - open_ms % HOUR, 0.0
                for share, offset in ((1 / 3, 20_000), (2 / 3, 40_000)):
                    q = per_minute * share
                    yield Frame(
                        kline(open_ms, q, closed=False, event_ms=open_ms + offset, close=close),
                        hour_ms,
                        done + q,
                    )
                done += per_minute
                yield Frame(
                    kline(open_ms, per_minute, closed=True, event_ms=open_ms + MIN + 50, close=close),
                    hour_ms,
                    done,
                )


def hourly_sums() -> dict[int, float]:
    sums: dict[int, float] = defaultdict(float)
    with (DATA / "xrpusdt-perp-5m-2021-11-15.csv").open() as fh:
        for row in csv.DictReader(fh):
            t = int(row["open_time"])
            sums[t - t % HOUR] += float(row["volume"]) * float(row["close"])
    return dict(sums)


def expected_spikes(multiple: float, min_volume: float) -> dict[int, int]:
    """hour → event time of the first frame where the running hour volume crosses the rule."""
    sums = hourly_sums()
    found: dict[int, int] = {}
    for f in xrp_frames():
        previous = sums.get(f.hour_ms - HOUR, 0.0)
        if f.hour_ms in found or previous <= 0:
            continue
        if f.hour_q_so_far >= min_volume and f.hour_q_so_far / previous >= multiple:
            found[f.hour_ms] = f.kline.event_time_ms
    return found


def run(detector: SpikeDetector, klines: Iterator[Kline] | list[Kline]) -> list[Alert]:
    alerts: list[Alert] = []
    for k in klines:
        alerts.extend(detector.on_kline(k))
    return alerts


def minute_of(alert: Alert) -> int:
    return (ms_from_utc(alert.detected_at) - ms_from_utc(alert.hour)) // MIN


@pytest.mark.parametrize(("multiple", "min_volume"), [(3.0, 3_000_000), (2.0, 50_000_000), (2.5, 3_000_000)])
def test_spiking_hours_match_an_independent_hourly_sum(multiple: float, min_volume: float) -> None:
    expected = expected_spikes(multiple, min_volume)
    assert expected, "the thresholds must make some hours spike"
    alerts = run(SpikeDetector(multiple, min_volume), (f.kline for f in xrp_frames()))
    spikes = [a for a in alerts if a.alert_type is AlertType.SPIKE]
    assert {ms_from_utc(a.hour): ms_from_utc(a.detected_at) for a in spikes} == expected
    per_hour = Counter((a.symbol, a.hour, a.alert_type) for a in alerts)
    assert max(per_hour.values()) == 1, "at most one alert per symbol, hour and type"
    sums = hourly_sums()
    for a in spikes:
        hour = ms_from_utc(a.hour)
        assert a.previous_volume == pytest.approx(sums[hour - HOUR], rel=1e-9)
        assert a.ratio == pytest.approx(a.current_volume / a.previous_volume)
        assert a.ratio >= multiple and a.current_volume >= min_volume
        assert a.asset == "XRP" and a.price > 0


def test_default_thresholds_find_the_known_xrp_spike_hours() -> None:
    alerts = run(SpikeDetector(3.0, 3_000_000), (f.kline for f in xrp_frames()))
    hours = sorted(ms_from_utc(a.hour) for a in alerts if a.alert_type is AlertType.SPIKE)
    # computed by hand from the file: final ratios 7.51, 5.32, 4.84, 4.75, 3.40, 3.40
    assert hours == sorted(
        [1637020800000, 1637197200000, 1637056800000, 1637420400000, 1637431200000, 1637247600000]
    )


def test_half_and_full_updates_follow_the_first_alert_minute() -> None:
    alerts = run(SpikeDetector(2.0, 3_000_000), (f.kline for f in xrp_frames()))
    by_hour: dict[int, dict[AlertType, Alert]] = defaultdict(dict)
    for a in alerts:
        by_hour[ms_from_utc(a.hour)][a.alert_type] = a
    minutes = {minute_of(kinds[AlertType.SPIKE]) for kinds in by_hour.values()}
    assert any(m <= 20 for m in minutes) and any(m > 20 for m in minutes)
    last_hour = max(by_hour)
    for hour, kinds in by_hour.items():
        first = minute_of(kinds[AlertType.SPIKE])
        assert (AlertType.HALF_UPDATE in kinds) == (first <= 20), (hour, first)
        if hour != last_hour:  # the file ends before the last hour closes
            assert (AlertType.FULL_UPDATE in kinds) == (first < 55), (hour, first)
        if AlertType.HALF_UPDATE in kinds:
            half = kinds[AlertType.HALF_UPDATE]
            assert ms_from_utc(half.detected_at) - hour >= 30 * MIN
            assert half.current_volume >= kinds[AlertType.SPIKE].current_volume
        if AlertType.FULL_UPDATE in kinds:
            full = kinds[AlertType.FULL_UPDATE]
            assert full.current_volume == pytest.approx(hourly_sums()[hour], rel=1e-9)
            assert full.is_update if hasattr(full, "is_update") else full.alert_type.is_update


def test_duplicated_frames_do_not_double_count() -> None:
    once = run(SpikeDetector(3.0, 3_000_000), (f.kline for f in xrp_frames()))

    def twice() -> Iterator[Kline]:
        for f in xrp_frames():
            yield f.kline
            yield f.kline

    again = run(SpikeDetector(3.0, 3_000_000), twice())
    assert [a.to_json_dict() for a in again] == [a.to_json_dict() for a in once]


def flat_hour(start: int, per_minute: float, **kw: object) -> list[Kline]:
    return [kline(start + m * MIN, per_minute, closed=True, **kw) for m in range(60)]  # type: ignore[arg-type]


def test_minute_59_closing_after_the_next_hour_started_counts_in_its_own_hour() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    h1, h2 = H0 + HOUR, H0 + 2 * HOUR
    prev = flat_hour(H0, 100_000)[:59]  # 5.9M closed in minutes 0..58
    assert run(d, prev) == []
    assert d.on_kline(kline(H0 + 59 * MIN, 50_000, closed=False, event_ms=H0 + 59 * MIN + 30_000)) == []
    # the next hour starts before minute 59's closed frame arrives
    assert d.on_kline(kline(h1, 17_900_000, closed=False, event_ms=h1 + 200)) == []
    # minute 59 closes late at 100k: the previous hour is 6.0M, so 17.9M is not yet 3×
    assert d.on_kline(kline(H0 + 59 * MIN, 100_000, closed=True, event_ms=h1 + 300)) == []
    spikes = d.on_kline(kline(h1, 18_000_000, closed=False, event_ms=h1 + 5_000))
    assert [(a.alert_type, a.previous_volume, a.current_volume) for a in spikes] == [
        (AlertType.SPIKE, pytest.approx(6_000_000), 18_000_000)
    ]
    # the rest of h1 streams: minute 0 closes at 18M, minutes 1-58 trade nothing
    rest = [kline(h1, 18_000_000, closed=True)] + [
        kline(h1 + m * MIN, 0.0, closed=True) for m in range(1, 59)
    ]
    [half] = run(d, rest)
    assert half.alert_type is AlertType.HALF_UPDATE and ms_from_utc(half.detected_at) == h1 + 30 * MIN
    # hour h1 ends; its minute-59 close arrives after h2's first frame, before the grace:
    # FULL_UPDATE fires on it, with the final total, exactly once
    assert d.on_kline(kline(h1 + 59 * MIN, 0.0, closed=False, event_ms=h1 + 59 * MIN + 1_000)) == []
    assert d.on_kline(kline(h2, 10.0, closed=False, event_ms=h2 + 100)) == []
    full = d.on_kline(kline(h1 + 59 * MIN, 500_000, closed=True, event_ms=h2 + 400))
    assert [(a.alert_type, a.current_volume, a.hour) for a in full] == [
        (AlertType.FULL_UPDATE, 18_500_000, utc_from_ms(h1))
    ]
    assert d.on_time(h2 + HOUR) == []


def test_a_spike_waits_for_the_previous_hour_to_close_and_fires_on_its_late_close() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    h1 = H0 + HOUR
    run(d, flat_hour(H0, 100_000)[:59])
    assert d.on_kline(kline(H0 + 59 * MIN, 50_000, closed=False, event_ms=H0 + 59 * MIN + 30_000)) == []
    assert d.on_kline(kline(h1, 18_500_000, closed=False, event_ms=h1 + 100)) == []
    [spike] = d.on_kline(kline(H0 + 59 * MIN, 100_000, closed=True, event_ms=h1 + 300))
    assert (spike.hour, spike.previous_volume, spike.current_volume) == (
        utc_from_ms(h1),
        6_000_000,
        18_500_000,
    )
    assert ms_from_utc(spike.detected_at) == h1 + 300


def test_without_minute_59_closed_the_previous_hour_is_no_denominator_until_its_1h_kline() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    h1 = H0 + HOUR
    run(d, flat_hour(H0, 100_000)[:59])
    assert d.on_kline(kline(H0 + 59 * MIN, 100_000, closed=False, event_ms=H0 + 59 * MIN + 59_000)) == []
    assert d.on_kline(kline(h1, 18_500_000, closed=False, event_ms=h1 + 100)) == []
    assert d.incomplete_hours() == []  # within the grace the close may still come
    # past the grace without the close: still no spike on a guessed denominator
    assert d.on_kline(kline(h1, 18_600_000, closed=False, event_ms=h1 + CLOSE_GRACE_MS)) == []
    assert d.without_denominator() == ["XRPUSDT"]
    assert d.incomplete_hours() == [("XRPUSDT", H0)]
    d.set_hour_total("XRPUSDT", H0, 6_100_000)  # the closed 1h kline, over REST
    assert d.without_denominator() == [] and d.incomplete_hours() == []
    [spike] = d.on_kline(kline(h1, 18_700_000, closed=False, event_ms=h1 + 5_000))
    assert spike.previous_volume == 6_100_000 and spike.ratio == pytest.approx(18.7 / 6.1)


def test_a_previous_hour_with_a_hole_is_no_denominator_until_its_minutes_arrive() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    h1 = H0 + HOUR
    hour = flat_hour(H0, 100_000)
    run(d, hour[:20] + hour[30:])  # minutes 20-29 lost in a reconnect: 5.0M seen of 6.0M
    # 16M is 3.2× the hour with the hole but 2.67× the true hour: no (false) spike
    assert d.on_kline(kline(h1, 16_000_000, closed=False, event_ms=h1 + 5_000)) == []
    snap = d.snapshot("XRPUSDT")
    assert snap is not None and snap.previous_volume == 0 and snap.ratio == 0
    assert d.without_denominator() == ["XRPUSDT"] and d.incomplete_hours() == [("XRPUSDT", H0)]
    d.seed("XRPUSDT", hour[20:30])  # the gap backfill
    assert d.without_denominator() == [] and d.incomplete_hours() == []
    assert d.on_kline(kline(h1, 17_000_000, closed=False, event_ms=h1 + 6_000)) == []
    [spike] = d.on_kline(kline(h1, 18_000_000, closed=False, event_ms=h1 + 7_000))
    assert spike.previous_volume == pytest.approx(6_000_000) and spike.ratio == pytest.approx(3.0)


def spiked_hour(d: SpikeDetector, h1: int) -> tuple[list[Kline], list[Alert]]:
    """H0 flat at 6M, then h1 with 20M at minute 5 (SPIKE at its close) and 100k otherwise,
    streamed up to minute 49: minutes 50-59 are lost with a dropped connection."""
    run(d, flat_hour(H0, 100_000))
    minutes = [kline(h1 + m * MIN, 20_000_000 if m == 5 else 100_000, closed=True) for m in range(60)]
    return minutes, run(d, minutes[:50])


def test_full_update_with_the_last_minutes_missing_waits_for_them_and_reports_the_exact_total() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    h1 = H0 + HOUR
    minutes, alerts = spiked_hour(d, h1)
    assert [(a.alert_type, minute_of(a)) for a in alerts] == [
        (AlertType.SPIKE, 6),
        (AlertType.HALF_UPDATE, 30),
    ]
    assert alerts[1].current_volume == pytest.approx(20_000_000 + 28 * 100_000)  # minutes 0-28
    close = h1 + HOUR + CLOSE_GRACE_MS
    assert d.on_time(close) == []  # due, but the total would be understated
    assert d.incomplete_hours() == [("XRPUSDT", h1)]
    assert d.on_time(close + 4 * MIN) == []
    d.seed("XRPUSDT", minutes[50:])  # the gap backfill arrives
    [full] = d.on_time(close + 4 * MIN + 1)
    assert full.alert_type is AlertType.FULL_UPDATE and full.hour == utc_from_ms(h1)
    assert (full.current_volume, full.previous_volume) == (pytest.approx(25_900_000), 6_000_000)
    assert d.on_time(close + HOUR) == []


def test_full_update_still_incomplete_after_the_wait_bound_is_held_back() -> None:
    held: list[HeldBack] = []
    d = SpikeDetector(3.0, 1_000_000, full_wait_ms=5 * MIN, on_held_back=held.append)
    h1 = H0 + HOUR
    minutes, _ = spiked_hour(d, h1)
    # the connection was down across the close: event time jumps well past close + grace
    seen = h1 + HOUR + 20 * MIN
    assert d.on_time(seen) == []
    assert d.on_time(seen + 5 * MIN - 1) == [] and held == []  # the wait counts from `seen`
    assert d.on_time(seen + 5 * MIN) == []
    assert held == [HeldBack("XRPUSDT", h1, AlertType.FULL_UPDATE, "full_incomplete")]
    assert d.held_back == 1 and d.updates_waiting == 0
    d.seed("XRPUSDT", minutes[50:])
    assert d.on_time(seen + 6 * MIN) == []  # dropped means never sent later


def test_an_update_whose_figures_are_unknown_is_held_back_not_emitted() -> None:
    held: list[HeldBack] = []
    d = SpikeDetector(3.0, 1_000_000, on_held_back=held.append)
    h1, h2 = H0 + HOUR, H0 + 2 * HOUR
    # a SPIKE row whose denominator is not known, and no previous hour to take it from
    d.restore([("XRPUSDT", utc_from_ms(h1), AlertType.SPIKE, utc_from_ms(h1 + 25 * MIN), 0.0)])
    d.seed("XRPUSDT", flat_hour(h1, 500_000))
    assert d.on_time(h2 + CLOSE_GRACE_MS) == []
    assert held == [HeldBack("XRPUSDT", h1, AlertType.FULL_UPDATE, "figures_unknown")]


@pytest.mark.parametrize(
    ("spike_minute", "half", "full"),
    [
        (0, True, True),
        (20, True, True),
        (21, False, True),
        (54, False, True),
        (55, False, False),
        (59, False, False),
    ],
)
def test_updates_depend_on_the_first_alert_minute(spike_minute: int, half: bool, full: bool) -> None:
    d = SpikeDetector(3.0, 1_000_000)
    h1 = H0 + HOUR
    run(d, flat_hour(H0, 100_000))
    alerts: list[Alert] = []
    for m in range(60):
        big = m == spike_minute
        if big:
            at = h1 + m * MIN + 10_000
            alerts += d.on_kline(kline(h1 + m * MIN, 20_000_000, closed=False, event_ms=at))
        alerts += d.on_kline(kline(h1 + m * MIN, 20_000_000 if big else 1_000, closed=True))
    alerts += d.on_time(h1 + 2 * HOUR)
    spike, *later = alerts
    assert spike.alert_type is AlertType.SPIKE and minute_of(spike) == spike_minute
    kinds = [a.alert_type for a in later]
    assert kinds == [
        k for k, wanted in ((AlertType.HALF_UPDATE, half), (AlertType.FULL_UPDATE, full)) if wanted
    ]


def test_previous_hour_of_zero_volume_gives_no_alert() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    run(d, flat_hour(H0, 0.0))
    assert d.on_kline(kline(H0 + HOUR, 50_000_000, closed=False)) == []
    snap = d.snapshot("XRPUSDT")
    assert snap is not None and snap.ratio == 0 and snap.current_volume == 50_000_000


def test_previous_hour_seen_only_from_its_middle_is_unknown_and_gives_no_alert() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    run(d, flat_hour(H0, 100_000)[30:])
    assert d.on_kline(kline(H0 + HOUR, 50_000_000, closed=False)) == []


def test_under_the_minimum_volume_or_the_multiple_nothing_fires() -> None:
    d = SpikeDetector(3.0, 3_000_000)
    run(d, flat_hour(H0, 10_000))  # 600k previous hour
    assert d.on_kline(kline(H0 + HOUR, 2_999_999, closed=False)) == []  # 5× but under 3M
    d = SpikeDetector(3.0, 3_000_000)
    run(d, flat_hour(H0, 100_000))  # 6M previous hour
    assert d.on_kline(kline(H0 + HOUR, 17_999_999, closed=False)) == []  # over 3M but 2.99×
    assert d.on_time(H0 + 3 * HOUR) == []


def test_exactly_one_spike_per_symbol_and_hour_and_symbols_are_independent() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    run(d, flat_hour(H0, 100_000) + flat_hour(H0, 100_000, symbol="BTCUSDT"))
    h1 = H0 + HOUR
    first = d.on_kline(kline(h1, 20_000_000, closed=False, event_ms=h1 + 1_000))
    second = d.on_kline(kline(h1, 40_000_000, closed=True, event_ms=h1 + 60_000))
    third = d.on_kline(kline(h1 + MIN, 40_000_000, closed=False, symbol="BTCUSDT", event_ms=h1 + 61_000))
    assert [a.symbol for a in first] == ["XRPUSDT"] and second == []
    assert [(a.symbol, a.asset) for a in third] == [("BTCUSDT", "BTC")]


def test_restore_prevents_a_second_spike_after_a_restart_and_keeps_updates_due() -> None:
    h1 = H0 + HOUR
    history = flat_hour(H0, 100_000) + [kline(h1 + m * MIN, 2_000_000, closed=True) for m in range(12)]
    first = SpikeDetector(3.0, 1_000_000)
    [spike] = run(first, history)
    assert minute_of(spike) == 9  # 20M reached with minute 9's close (event at 10:00)

    restarted = SpikeDetector(3.0, 1_000_000)
    restarted.restore([(spike.symbol, spike.hour, AlertType.SPIKE, spike.detected_at, spike.previous_volume)])
    restarted.seed("XRPUSDT", history)
    after = run(restarted, [kline(h1 + 12 * MIN, 2_000_000, closed=False, event_ms=h1 + 12 * MIN + 5)])
    assert after == []
    rest = [kline(h1 + m * MIN, 10_000, closed=True) for m in range(12, 60)]
    later = run(restarted, rest) + restarted.on_time(h1 + HOUR + CLOSE_GRACE_MS)
    assert [a.alert_type for a in later] == [AlertType.HALF_UPDATE, AlertType.FULL_UPDATE]

    # with the HALF already in the database too, only the FULL remains
    again = SpikeDetector(3.0, 1_000_000)
    again.restore(
        [
            (spike.symbol, spike.hour, AlertType.SPIKE, spike.detected_at, spike.previous_volume),
            (spike.symbol, spike.hour, AlertType.HALF_UPDATE, utc_from_ms(h1 + 30 * MIN), 6e6),
        ]
    )
    again.seed("XRPUSDT", history + rest)
    assert [a.alert_type for a in again.on_time(h1 + HOUR + CLOSE_GRACE_MS)] == [AlertType.FULL_UPDATE]


def test_after_a_restart_due_updates_wait_for_their_minutes_and_carry_the_true_totals() -> None:
    h1, h2 = H0 + HOUR, H0 + 2 * HOUR
    prev = flat_hour(H0, 100_000)
    hour = [kline(h1 + m * MIN, 2_000_000 if m < 12 else 50_000, closed=True) for m in range(60)]
    [spike] = run(SpikeDetector(3.0, 1_000_000), prev + hour[:12])
    fired = (spike.symbol, spike.hour, AlertType.SPIKE, spike.detected_at, spike.previous_volume)
    held: list[HeldBack] = []

    # restarted at h1 + 40 min, the HALF still owed: the first ticks come before any data
    restarted = SpikeDetector(3.0, 1_000_000, on_held_back=held.append)
    restarted.restore([fired])
    assert restarted.on_time(h1 + 40 * MIN) == []
    live = kline(h1 + 40 * MIN, 50_000, closed=False, event_ms=h1 + 40 * MIN + 1_000)
    assert restarted.on_kline(live) == []
    restarted.seed("XRPUSDT", prev + hour[:40])  # candles_1m and REST
    [half] = restarted.on_time(h1 + 40 * MIN + 2_000)
    assert half.alert_type is AlertType.HALF_UPDATE
    assert (half.current_volume, half.previous_volume, half.price) == (
        pytest.approx(24_000_000 + 29 * 50_000),
        6_000_000,
        1.0,
    )
    assert half.ratio == pytest.approx(25_450_000 / 6_000_000)

    # restarted again just after the close, the FULL owed: it waits for h1's minutes too
    again = SpikeDetector(3.0, 1_000_000, on_held_back=held.append)
    again.restore([fired, (spike.symbol, spike.hour, AlertType.HALF_UPDATE, half.detected_at, 6e6)])
    assert again.on_time(h2 + 10_000) == []
    again.seed("XRPUSDT", hour)
    [full] = again.on_time(h2 + 11_000)
    assert full.alert_type is AlertType.FULL_UPDATE
    assert (full.current_volume, full.previous_volume, full.price) == (
        pytest.approx(24_000_000 + 48 * 50_000),
        6_000_000,
        1.0,
    )
    assert held == []


def test_seed_arms_detection_without_alerting_and_is_idempotent_with_streamed_frames() -> None:
    h1 = H0 + HOUR
    rest = flat_hour(H0, 100_000) + [kline(h1 + m * MIN, 1_000_000, closed=True) for m in range(10)]
    d = SpikeDetector(3.0, 1_000_000)
    d.seed("XRPUSDT", rest)
    d.seed("XRPUSDT", rest)  # twice: still 10M, not 20M
    snap = d.snapshot("XRPUSDT")
    assert snap is not None and snap.current_volume == 10_000_000 and snap.previous_volume == 6_000_000
    # the same minutes streamed again change nothing; minute 10 pushes the hour over 18M
    assert run(d, rest[-3:]) == []
    [spike] = d.on_kline(kline(h1 + 10 * MIN, 8_000_000, closed=False, event_ms=h1 + 10 * MIN + 30_000))
    assert spike.current_volume == 18_000_000 and spike.ratio == pytest.approx(3.0)
    with pytest.raises(ValueError, match="BTCUSDT"):
        d.seed("XRPUSDT", [kline(H0, 1.0, closed=True, symbol="BTCUSDT")])


def test_hourly_klines_are_authoritative_for_their_hour() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    h1 = H0 + HOUR
    assert d.on_kline(kline(H0, 5_000_000, closed=True, interval="1h", event_ms=h1)) == []
    # 1m data says 30M, but the 1h kline of the hour says 14M (< 3 × 5M): no spike
    assert d.on_kline(kline(h1, 30_000_000, closed=False, event_ms=h1 + 1_000)) == []
    assert d.on_kline(kline(h1, 14_000_000, closed=False, interval="1h", event_ms=h1 + 1_000)) == []
    [spike] = d.on_kline(kline(h1, 15_000_000, closed=False, interval="1h", event_ms=h1 + 2_000, close=2.5))
    assert (spike.current_volume, spike.previous_volume, spike.price) == (15_000_000, 5_000_000, 1.0)
    # the closed 1h kline ends the hour: FULL_UPDATE at once, with the final 1h volume
    [full] = d.on_kline(kline(h1, 16_000_000, closed=True, interval="1h", event_ms=h1 + HOUR + 10))
    assert full.alert_type is AlertType.FULL_UPDATE and full.current_volume == 16_000_000


def test_alerts_carry_funding_asset_names_and_last_price() -> None:
    d = SpikeDetector(3.0, 1_000_000, assets={"1000PEPEUSDT": "1000PEPE"})
    d.set_asset("XRPUSDT", "XRP")
    for symbol in ("1000PEPEUSDT", "XRPUSDT"):
        run(d, flat_hour(H0, 100_000, symbol=symbol))
        d.set_mark(MarkPrice(symbol, 1.1, 1.1, 0.0001, H0 + 8 * HOUR, H0 + HOUR))
        d.set_mark(MarkPrice(symbol, 1.2, None, None, 0, H0 + HOUR + 1))  # "r": "" keeps the rate
    alerts = [
        a
        for s in ("1000PEPEUSDT", "XRPUSDT")
        for a in d.on_kline(kline(H0 + HOUR, 20_000_000, closed=False, symbol=s, close=0.5))
    ]
    assert [(a.asset, a.funding_rate, a.price) for a in alerts] == [
        ("1000PEPE", 0.0001, 0.5),
        ("XRP", 0.0001, 0.5),
    ]
    assert "1000PEPE hourly volume $20.00M (3.33× prev)" in alerts[0].to_json_dict()["message"]


def test_forget_drops_a_delisted_symbol_and_its_pending_updates() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    run(d, flat_hour(H0, 100_000))
    assert len(d.on_kline(kline(H0 + HOUR, 20_000_000, closed=False))) == 1
    d.forget("XRPUSDT")
    assert d.snapshot("XRPUSDT") is None and "XRPUSDT" not in d.symbols
    assert d.on_time(H0 + 3 * HOUR) == []


def test_frames_older_than_the_previous_hour_are_ignored() -> None:
    d = SpikeDetector(3.0, 1_000_000)
    run(d, flat_hour(H0 + 2 * HOUR, 100_000))
    stale = replace(kline(H0, 99_000_000, closed=True), event_time_ms=H0 + 3 * HOUR)
    assert d.on_kline(stale) == []


def test_a_spike_without_a_price_is_held_back_and_no_update_follows() -> None:
    held: list[HeldBack] = []
    d = SpikeDetector(3.0, 1_000_000, on_held_back=held.append)
    h1 = H0 + HOUR
    run(d, flat_hour(H0, 100_000))
    assert d.on_kline(replace(kline(h1, 20_000_000, closed=False), close=0.0)) == []
    assert held == [HeldBack("XRPUSDT", h1, AlertType.SPIKE, "figures_unknown")]
    assert d.updates_waiting == 0
    assert d.on_kline(kline(h1, 30_000_000, closed=False, event_ms=h1 + 40_000)) == []  # once per hour
    assert d.on_time(h1 + 2 * HOUR) == [] and len(held) == 1
