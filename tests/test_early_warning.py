"""The early warning in the detector (`core.pace`, ingest/detector.py): while the hour is below
a preset multiple, the first update whose pace projects it records an EARLY with the projected
total, once per grade and symbol-hour, before the SPIKE; across a restart too.

The hour builds up over many kline updates (five partial updates and a close a minute, for an
hour), accelerating, as it does on the exchange. The expected moments are computed independently
of the detector, from the running sum of the frames and the curve (a flat usual pace: the share
done is the share of the hour elapsed)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.alerts import Alert, AlertType, Level
from core.clock import utc_from_ms
from core.pace import MIN_ELAPSED_MS, Curve, curve_from_sums, projected_volume
from core.presets import Grades
from core.tiers import tier_alert_types
from ingest.detector import SpikeDetector
from ingest.parsers import Kline
from tests import building_hour
from tests.building_hour import H1, HOUR, MIN, SYMBOL, fired, previous_hour, run

HOUR_OF_DAY = (H1 // HOUR) % 24
PREVIOUS = 6_000_000.0  # the previous hour: 100k a minute
DEFAULTS = (3.0, 3_000_000.0)
GRADES = Grades.for_defaults(*DEFAULTS)
FLAT = Curve(tuple((k + 1) / 60 for k in range(60)), 30)


def per_minute(m: int) -> float:
    """Accelerating: the pace projects 2× + 0.05× a minute (3× near minute 20, 4× near 40); the
    hour itself reaches 3× near minute 45 and ends at ~4.95×."""
    return 200_000 + 10_000 * m


def build_up(first: int = 0, last: int = 60) -> list[Kline]:
    return building_hour.build_up(per_minute, first, last)


@dataclass(frozen=True)
class Moment:
    index: int  # of the frame in build_up()
    event_ms: int
    current: float
    projected: float


def expected_early() -> dict[float, Moment]:
    """Per preset multiple: the first frame whose flat-pace projection reaches it while the hour is
    below it (at least 5 minutes in, at least 10 % done), independently of the detector."""
    latest: dict[int, float] = {}
    found: dict[float, Moment] = {}
    for i, frame in enumerate(build_up()):
        minute = (frame.open_time_ms - H1) // MIN
        latest[minute] = frame.quote_volume
        current = sum(latest.values())
        elapsed = frame.event_time_ms - H1
        if elapsed < MIN_ELAPSED_MS or elapsed >= HOUR or elapsed / HOUR < 0.10:
            continue
        projected = current / (elapsed / HOUR)
        for multiple in GRADES.multiples:
            if multiple not in found and projected >= multiple * PREVIOUS and current < multiple * PREVIOUS:
                found[multiple] = Moment(i, frame.event_time_ms, current, projected)
    return found


def detector(curve: Curve | None = FLAT) -> SpikeDetector:
    d = SpikeDetector(*DEFAULTS, grades=GRADES)
    d.seed(SYMBOL, previous_hour())
    if curve is not None:
        d.set_curve(SYMBOL, HOUR_OF_DAY, curve)
    return d


def test_flat_curve_projects_by_the_share_of_the_hour_elapsed() -> None:
    assert FLAT.done_at(30 * MIN) == pytest.approx(0.5)
    assert FLAT.done_at(90_000) == pytest.approx(1.5 / 60)
    assert projected_volume(FLAT, 1_000_000, 4 * MIN) is None  # too early in the hour
    assert projected_volume(FLAT, 1_000_000, 12 * MIN) == pytest.approx(5_000_000)
    assert projected_volume(Curve(FLAT.shares, 6), 1_000_000, 12 * MIN) is None  # too few days


def test_curve_from_minute_sums_is_the_cumulative_share() -> None:
    sums = [0.0] * 60
    sums[0], sums[30], sums[59] = 50.0, 30.0, 20.0
    curve = curve_from_sums(sums, 30)
    assert curve is not None
    assert curve.shares[0] == 0.5 and curve.shares[29] == 0.5 and curve.shares[30] == 0.8
    assert curve.shares[58] == 0.8 and curve.shares[59] == 1.0
    assert curve.done_at(30 * MIN + 30_000) == pytest.approx(0.65)  # halfway through minute 30
    assert curve_from_sums([0.0] * 60, 30) is None


def test_early_warning_fires_once_per_grade_before_the_spike_with_the_figures_of_its_moment() -> None:
    expected = expected_early()
    assert set(expected) == {3.0, 4.0}  # the pace never projects 5×
    frames = build_up()
    d = detector()
    seen: list[tuple[int, Alert]] = []
    for i, frame in enumerate(frames):
        seen += [(i, a) for a in d.on_kline(frame)]
    early = [(i, a) for i, a in seen if a.alert_type is AlertType.EARLY]
    assert [(i, a.level) for i, a in early] == [
        (expected[3.0].index, None),  # the public one: projects the default multiple
        (expected[4.0].index, Level(4.0, DEFAULTS[1])),
    ]
    for (_, alert), multiple in zip(early, (3.0, 4.0), strict=True):
        moment = expected[multiple]
        assert alert.detected_at == utc_from_ms(moment.event_ms)
        assert alert.current_volume == pytest.approx(moment.current)
        assert alert.projected_volume == pytest.approx(moment.projected)
        assert alert.projected_ratio is not None and alert.projected_ratio >= multiple
        assert alert.ratio < multiple  # the hour itself is not there yet
        assert alert.previous_volume == PREVIOUS
    spike = next(i for i, a in seen if a.alert_type is AlertType.SPIKE and a.level is None)
    assert early[0][0] < spike  # before the SPIKE, by many minutes
    assert (frames[spike].event_time_ms - early[0][1].detected_at.timestamp() * 1000) > 20 * MIN


def test_no_early_warning_without_a_curve_of_enough_days() -> None:
    assert not [a for a in run(detector(None), build_up()) if a.alert_type is AlertType.EARLY]
    few = Curve(FLAT.shares, 6)
    assert not [a for a in run(detector(few), build_up()) if a.alert_type is AlertType.EARLY]


def test_a_restart_neither_resends_an_early_warning_nor_loses_the_next_grade() -> None:
    expected = expected_early()
    frames = build_up()
    cut = expected[3.0].index + 30  # five minutes after the public EARLY
    before = run(detector(), frames[: cut + 1])
    public = [a for a in before if a.alert_type is AlertType.EARLY]
    assert len(public) == 1
    # the restarted detector: the stored rows, the stored minutes, the stored curve
    d = detector()
    d.restore(fired(before))
    d.seed(SYMBOL, [f for f in frames[: cut + 1] if f.closed])
    after = run(d, frames[cut + 1 :])
    early = [a for a in after if a.alert_type is AlertType.EARLY]
    assert [(a.level, a.detected_at) for a in early] == [
        (Level(4.0, DEFAULTS[1]), utc_from_ms(expected[4.0].event_ms))
    ]


def test_an_early_warning_missed_while_down_fires_when_ingest_is_back_if_still_early() -> None:
    expected = expected_early()
    frames = build_up()
    down_from, back_at = expected[3.0].index - 12, expected[3.0].index + 24  # six minutes down
    d = detector()
    assert not [a for a in run(d, frames[:down_from]) if a.alert_type is AlertType.EARLY]
    restarted = detector()
    restarted.seed(SYMBOL, [f for f in frames[:back_at] if f.closed])  # backfilled minutes
    early = [a for a in run(restarted, frames[back_at:]) if a.alert_type is AlertType.EARLY]
    assert early[0].level is None
    assert early[0].detected_at == utc_from_ms(frames[back_at].event_time_ms)  # the first update back
    assert early[0].ratio < 3.0


def test_the_early_warning_is_a_paid_choice_off_by_default() -> None:
    assert AlertType.EARLY not in tier_alert_types("free")
    assert AlertType.EARLY in tier_alert_types("pro") and AlertType.EARLY in tier_alert_types("elite")
    assert not AlertType.EARLY.is_update  # not an update: it needs no SPIKE before it
