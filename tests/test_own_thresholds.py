"""Own thresholds in the detector: the hour's climb is recorded as crossings, and every preset
pair (M, V) finds its SPIKE at the first moment the hour stood at or above both, with the
figures of that moment; across a restart, a downtime and a replay of the recording.

The hour builds up over many kline updates (six a minute, for an hour), as it does on the
exchange, never in one jump. The expected moments are computed independently of the detector,
from the running sum of the frames."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import orjson
import pytest

from core.alerts import Alert, AlertType, Level
from core.clock import ms_from_utc
from core.presets import Grades, multiple_presets, volume_presets
from ingest.detector import CLOSE_GRACE_MS, SpikeDetector
from ingest.parsers import Kline
from ingest.replay import replay_lines
from tests import building_hour
from tests.building_hour import H1, HOUR, MIN, fired, kline, run

PREVIOUS = 6_000_000.0  # the previous hour: 100k a minute
DEFAULTS = (3.0, 3_000_000.0)
GRADES = Grades.for_defaults(*DEFAULTS)
PAIRS = list(product(multiple_presets(DEFAULTS[0]), volume_presets(DEFAULTS[1])))
VOLSPIKE = Path(sys.executable).parent / "volspike"


def moving(event_ms: int) -> float:
    """The price moves through the hour: an alert's figures are those of its moment."""
    return 20.0 + (event_ms - H1) / HOUR


def previous_hour() -> list[Kline]:
    return building_hour.previous_hour(price=moving)


def per_minute(m: int) -> float:
    """The hour builds up unevenly to ~10.4x the previous hour ($62M) by its close."""
    return 600_000 + 40_000 * (m % 7) + (25_000 * m if m < 40 else 0)


def build_up(first: int = 0, last: int = 60) -> list[Kline]:
    """Minutes `first`..`last - 1` of the spiking hour: five partial updates and a close each."""
    return building_hour.build_up(per_minute, first, last, price=moving)


@dataclass(frozen=True)
class Moment:
    event_ms: int
    current: float


def first_moments(frames: list[Kline]) -> dict[tuple[float, float], Moment]:
    """(M, V) → the first frame of the hour at which the running volume stood at or above both,
    from a running sum of its own (a minute's later update replaces its earlier one)."""
    minutes: dict[int, float] = {}
    found: dict[tuple[float, float], Moment] = {}
    for k in frames:
        if k.open_time_ms < H1:
            continue
        minutes[k.open_time_ms] = k.quote_volume
        running = sum(minutes.values())
        for m, v in PAIRS:
            if (m, v) not in found and running / PREVIOUS >= m and running >= v:
                found[(m, v)] = Moment(k.event_time_ms, running)
    return found


def spike_for(alerts: list[Alert], m: float, v: float) -> Alert | None:
    """What fan-out sends a user with (M, V): the earliest SPIKE row at or above both."""
    rows = [a for a in alerts if a.alert_type is AlertType.SPIKE and a.ratio >= m and a.current_volume >= v]
    return min(rows, key=lambda a: a.detected_at, default=None)


def detector() -> SpikeDetector:
    return SpikeDetector(*DEFAULTS, grades=GRADES)


def test_every_preset_pair_gets_its_spike_at_the_first_moment_the_hour_stood_at_or_above_both() -> None:
    frames = previous_hour() + build_up()
    alerts = run(detector(), frames)
    expected = first_moments(frames)
    assert len(expected) == len(PAIRS) - 5  # the hour never reaches $100M

    for pair in PAIRS:
        got = spike_for(alerts, *pair)
        if pair not in expected:
            assert got is None, pair
            continue
        assert got is not None, pair
        assert ms_from_utc(got.detected_at) == expected[pair].event_ms, pair
        assert got.current_volume == pytest.approx(expected[pair].current), pair
        assert got.previous_volume == PREVIOUS
        assert got.price == pytest.approx(20.0 + (expected[pair].event_ms - H1) / HOUR)  # that moment's

    public = [a for a in alerts if a.alert_type is AlertType.SPIKE and a.level is None]
    crossings = [a for a in alerts if a.level is not None]
    assert len(public) == 1 and public[0] == spike_for(alerts, *DEFAULTS)
    assert 3.0 <= public[0].ratio < 3.1  # the default user's moment, as before
    # 5x: not the moment of the 3x alert, nor of the hour's 9x, but when it first stood at 5x
    five = spike_for(alerts, 5.0, DEFAULTS[1])
    assert five is not None and five.level == Level(5.0, 25_000_000.0) and 5.0 <= five.ratio < 5.1
    quarter = spike_for(alerts, DEFAULTS[0], 25_000_000)
    assert quarter is not None and 25_000_000 <= quarter.current_volume < 25_800_000
    # one row per grade reached: 4x, $25M, 5x, 7x, $50M, 10x, however often the hour is updated
    assert [a.level for a in crossings] == [
        Level(4.0, 10_000_000.0),
        Level(4.0, 25_000_000.0),
        Level(5.0, 25_000_000.0),
        Level(7.0, 25_000_000.0),
        Level(7.0, 50_000_000.0),
        Level(10.0, 50_000_000.0),
    ]


def test_the_hours_updates_are_the_public_spikes_and_crossings_stop_at_the_close() -> None:
    d = detector()
    frames = previous_hour() + build_up()
    alerts = run(d, frames) + d.on_time(H1 + HOUR + CLOSE_GRACE_MS)
    kinds = [(a.alert_type, a.level is None) for a in alerts if a.alert_type is not AlertType.SPIKE]
    assert kinds == [(AlertType.HALF_UPDATE, True), (AlertType.FULL_UPDATE, True)]
    after_close = H1 + HOUR + CLOSE_GRACE_MS + 10
    late = kline(H1 + 59 * MIN, 50_000_000, closed=True, event_ms=after_close, price=moving)
    assert d.on_kline(late) == []  # a late correction past the close records no crossing


def test_without_grades_only_the_public_rule_fires() -> None:
    alerts = run(SpikeDetector(*DEFAULTS), previous_hour() + build_up())
    assert [(a.alert_type, a.level) for a in alerts] == [
        (AlertType.SPIKE, None),
        (AlertType.HALF_UPDATE, None),
        (AlertType.FULL_UPDATE, None),
    ]


def test_a_restart_mid_hour_resends_nothing_and_records_the_rest_of_the_climb() -> None:
    frames = previous_hour() + build_up()
    straight = run(detector(), frames)
    cut = len(previous_hour()) + 6 * 33  # after minute 32: 3x, 4x, $25M and 5x were recorded
    before = run(detector(), frames[:cut])
    assert [a.level for a in before if a.level] == [Level(4.0, 10e6), Level(4.0, 25e6), Level(5.0, 25e6)]

    restarted = detector()
    restarted.restore(fired(before))
    restarted.seed("SOLUSDT", [k for k in frames[:cut] if k.closed])  # candles_1m
    after = run(restarted, frames[cut:])
    assert before + after == straight


def test_a_crossing_passed_while_ingest_was_down_is_alerted_when_it_comes_back() -> None:
    frames = previous_hour() + build_up()
    cut = len(previous_hour()) + 6 * 33
    back = len(previous_hour()) + 6 * 46  # down for minutes 33-45: 7x and $50M were passed meanwhile
    before = run(detector(), frames[:cut])

    restarted = detector()
    restarted.restore(fired(before))
    restarted.seed("SOLUSDT", [k for k in frames[:back] if k.closed])  # backfilled over REST
    after = run(restarted, frames[back:])
    [first, *_] = [a for a in after if a.level is not None]
    assert first.level == Level(7.0, 50e6)  # one crossing for both
    assert ms_from_utc(first.detected_at) == frames[back].event_time_ms  # the first kline after
    assert first.current_volume == pytest.approx(sum(per_minute(m) for m in range(46)) + per_minute(46) / 6)
    # 7x and $50M users are alerted now, with the figures of now; nobody is alerted twice
    assert spike_for(before + after, 7.0, DEFAULTS[1]) == first
    assert spike_for(before + after, DEFAULTS[0], 50e6) == first
    assert not {a.level for a in before} & {a.level for a in after if a.level}


def combined(k: Kline) -> bytes:
    body = {
        "t": k.open_time_ms, "T": k.close_time_ms, "s": k.symbol, "i": "1m", "f": 1, "L": 2,
        "o": f"{k.open}", "c": f"{k.close}", "h": f"{k.high}", "l": f"{k.low}", "v": f"{k.volume}",
        "n": 10, "x": k.closed, "q": f"{k.quote_volume}", "V": "0", "Q": "0", "B": "0",
    }  # fmt: skip
    data = {"e": "kline", "E": k.event_time_ms, "s": k.symbol, "k": body}
    return orjson.dumps({"stream": f"{k.symbol.lower()}@kline_1m", "data": data})


def test_the_replay_of_the_recording_gives_the_same_crossings(tmp_path: Path) -> None:
    frames = previous_hour() + build_up()
    live = run(detector(), frames)
    recording = tmp_path / "climb.jsonl"
    recording.write_bytes(b"\n".join(combined(k) for k in frames) + b"\n")

    replayed, stats = replay_lines(recording.read_bytes().splitlines(), detector())
    assert replayed == live and stats.crossings == 6

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPIKE_", "LOG_LEVEL"))}
    out = subprocess.run(
        [VOLSPIKE, "replay", "--crossings", recording], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert [Alert.from_json(line) for line in lines] == [
        Alert.from_json(a.to_json_dict()) for a in live
    ]  # through the JSON form: timestamps to the millisecond, the ratio to 4 places
    assert [line.get("level") for line in lines if "level" in line][2] == {"multiple": 5.0, "minVolume": 25e6}
    assert b"crossings: 6" in out.stderr
    # without the option, the public alerts only, as before
    plain = subprocess.run(
        [VOLSPIKE, "replay", recording], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )
    kinds = [orjson.loads(line)["alertType"] for line in plain.stdout.splitlines()]
    assert kinds == ["SPIKE", "HALF_UPDATE", "FULL_UPDATE"]
