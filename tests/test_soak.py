"""`volspike soak`: ingest, bot and webapp as three processes against the simulator with scheduled
spikes; the report's memory per process, alerts expected against delivered, and log problems."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bench.soak import SoakRun, build_report, log_problems, parse_duration, slope

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(900)  # 75 s of soak plus start-up and shutdown of five processes
def test_a_short_soak_reports_memory_alerts_and_log_problems(tmp_path: Path) -> None:
    report_path = tmp_path / "soak.json"
    command = ["soak", "--duration", "75s", "--symbols", "30", "--users", "2", "--spike-every", "10"]
    command += ["--sample-every", "2", "--json", str(report_path), "--logs", str(tmp_path / "logs")]
    done = subprocess.run(
        [sys.executable, "-m", "volspike.cli", *command],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = orjson.loads(report_path.read_bytes())
    assert report["duration_s"] == 75 and report["symbols"] == 30 and report["users"] == 2
    assert set(report["memory"]) == {"ingest", "bot", "webapp"}
    for name, memory in report["memory"].items():
        assert memory["samples"] >= 20, name
        assert 20 < memory["first_mib"] < 1024 and 20 < memory["last_mib"] < 1024, (name, memory)
        assert isinstance(memory["growth_mib_per_hour"], float), name
    assert report["spikes_scheduled"] >= 5
    assert report["alerts_expected"] == 2 * report["spikes_scheduled"]
    assert report["alerts_delivered"] == report["alerts_expected"], report["missing"]
    assert report["duplicates"] == 0 and report["missing"] == []
    assert len(report["pipeline_ms"]["last"]) == report["spikes_scheduled"]
    assert all(0 < ms < 30_000 for ms in report["pipeline_ms"]["first"])
    assert isinstance(report["log_problems"], list)
    assert set(report["exit_codes"]) == {"ingest", "bot", "webapp"}
    for name, path in report["logs"].items():
        assert Path(path).stat().st_size > 0, name  # every process logged (its start-up, at least)
    assert "alerts expected" in done.stdout and "WARNING/ERROR lines" in done.stdout


def test_soak_defaults_to_an_hour_and_600_symbols() -> None:
    from volspike.cli import build_parser

    args = build_parser().parse_args(["soak"])
    assert parse_duration(args.duration) == 3600 and args.symbols == 600


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("1.5h", 5400)]
)
def test_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "0"])
def test_a_bad_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_memory_growth_is_the_least_squares_slope() -> None:
    assert slope([(0, 100), (1800, 110), (3600, 120)]) * 3600 == pytest.approx(20)
    assert slope([(0, 100), (10, 100), (20, 100)]) == 0
    assert slope([(5, 100)]) == 0


def test_warnings_and_errors_are_grouped_and_counted_across_processes(tmp_path: Path) -> None:
    def line(level: str, msg: str, logger: str = "bot.delivery") -> str:
        return orjson.dumps({"ts": "t", "level": level, "logger": logger, "msg": msg}).decode()

    (tmp_path / "bot.log").write_text(
        "\n".join([line("info", "bot started"), line("warning", "retry"), line("warning", "retry")]) + "\n"
    )
    (tmp_path / "ingest.log").write_text(
        "\n".join([line("error", "boom", "ingest.service"), "Traceback (most recent call last):"]) + "\n"
    )
    problems = log_problems({"bot": tmp_path / "bot.log", "ingest": tmp_path / "ingest.log"})
    assert problems[0] == {
        "service": "bot",
        "level": "warning",
        "logger": "bot.delivery",
        "message": "retry",
        "count": 2,
    }
    assert {(p["service"], p["level"], p["count"]) for p in problems[1:]} == {
        ("ingest", "error", 1),
        ("ingest", "stderr", 1),
    }


def test_a_symbol_spiked_again_in_a_later_hour_is_not_counted_as_a_duplicate(tmp_path: Path) -> None:
    """Each message belongs to the latest trigger of its symbol before it: a symbol spiked in one
    hour and again in the next has two alerts, not one delivered twice; a real second message is
    still a duplicate."""
    run = SoakRun(duration=120.0, symbols=3, users=2, spike_every=10.0, sample_every=2.0)
    run.spiked = [(10.0, "ABCUSDT"), (20.0, "XYZUSDT"), (70.0, "ABCUSDT")]  # ABC again next hour

    def message(asset: str) -> str:
        return f"<b>[SIMULATED] {asset} hourly volume 5.2× the previous hour</b>"

    calls = [(1, 11.0, message("ABC")), (2, 11.5, message("ABC"))]
    calls += [(1, 21.0, message("XYZ")), (2, 21.2, message("XYZ")), (2, 22.0, message("XYZ"))]
    calls += [(1, 71.0, message("ABC")), (2, 71.4, message("ABC")), (1, 40.0, message("QQQ"))]
    report = build_report(run, [1, 2], {}, calls, {}, {})
    assert (report["alerts_expected"], report["alerts_delivered"]) == (6, 6)
    assert report["duplicates"] == 1  # XYZ's second message to user 2
    assert report["missing"] == [] and report["other_spike_messages"] == 1
    assert [round(ms) for ms in report["pipeline_ms"]["last"]] == [1500, 2000, 1400]
