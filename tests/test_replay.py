"""`volspike replay` end to end, as a subprocess, on the real capture and on made-up recordings."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.detector import SpikeDetector
from ingest.replay import replay_lines

DATA = Path(__file__).parent / "data"
VOLSPIKE = Path(sys.executable).parent / "volspike"
MIN = 60_000
HOUR = 3_600_000
H0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR  # 2023-11-14 22:00 UTC
H1, H2 = H0 + HOUR, H0 + 2 * HOUR
ALERT_KEYS = {
    "symbol",
    "asset",
    "currentVolume",
    "previousVolume",
    "volumeRatio",
    "price",
    "fundingRate",
    "message",
    "timestamp",
    "hourTimestamp",
    "isUpdate",
    "alertType",
}


def volspike(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPIKE_", "LOG_LEVEL"))}
    return subprocess.run([VOLSPIKE, *map(str, args)], cwd=cwd, env=env, capture_output=True, timeout=60)


def kline_msg(symbol: str, interval: str, open_ms: int, q: float, closed: bool, event_ms: int) -> bytes:
    span = MIN if interval == "1m" else HOUR
    k = {
        "t": open_ms, "T": open_ms + span - 1, "s": symbol, "i": interval, "f": 1, "L": 2,
        "o": "2.0", "c": "2.5", "h": "3.0", "l": "1.5", "v": str(q / 2.5), "n": 10, "x": closed,
        "q": f"{q:.2f}", "V": "1", "Q": "1", "B": "0",
    }  # fmt: skip
    data = {"e": "kline", "E": event_ms, "s": symbol, "k": k}
    return orjson.dumps({"stream": f"{symbol.lower()}@kline_{interval}", "data": data})


def mark_msg(event_ms: int, funding: str = "0.00010000") -> bytes:
    items = [
        {"e": "markPriceUpdate", "E": event_ms, "s": s, "p": "2.5", "i": "2.5", "P": "2.5", "r": funding,
         "T": H2 + 8 * HOUR}
        for s in ("AAAUSDT", "BBBUSDT")
    ]  # fmt: skip
    return orjson.dumps({"stream": "!markPrice@arr@1s", "data": items})


def recording() -> list[bytes]:
    """AAA streams only 1h klines, BBB only 1m klines; mark prices tick every minute.

    AAA: previous hour 2M; this hour reaches 7M (3.5×) at minute 10, 9M at minute 50.
    BBB: previous hour 60 × 50k = 3M; this hour 40 × 50k, then minute 40's first update brings
    it to 9,000,025 (3.0000083×), its close to 16,000,050; the hour ends at 16,950,050.
    """
    events: list[tuple[int, bytes]] = []
    events.append((H1 + 5, kline_msg("AAAUSDT", "1h", H0, 2_000_000, True, H1 + 5)))
    for m in range(60):
        t = H0 + m * MIN
        events.append((t + MIN + 1, kline_msg("BBBUSDT", "1m", t, 50_000, True, t + MIN + 1)))
    aaa = {m: 1_000_000 + m * 600_000 for m in range(0, 60, 5)}  # 7M at minute 10, 31M at 50
    aaa = {m: q for m, q in aaa.items() if m <= 10} | {50: 9_000_000}
    for m, q in aaa.items():
        events.append(
            (H1 + m * MIN + 30_000, kline_msg("AAAUSDT", "1h", H1, q, False, H1 + m * MIN + 30_000))
        )
    events.append((H2 + 10, kline_msg("AAAUSDT", "1h", H1, 9_500_000, True, H2 + 10)))
    for m in range(60):
        t = H1 + m * MIN
        q = 14_000_050 if m == 40 else 50_000
        events.append((t + 20_000, kline_msg("BBBUSDT", "1m", t, q / 2, False, t + 20_000)))
        events.append((t + MIN + 2, kline_msg("BBBUSDT", "1m", t, q, True, t + MIN + 2)))
    for m in range(0, 125):
        events.append((H0 + 10 * MIN + m * MIN, mark_msg(H0 + 10 * MIN + m * MIN)))
    events.append((H0 + 1, b'{"stream":"aaausdt@aggTrade","data":{"e":"aggTrade","E":1}}'))
    events.sort(key=lambda item: item[0])
    return [line for _, line in events]


def alerts_of(stdout: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stdout.splitlines()]


def test_the_real_capture_replays_with_skipped_streams_reported(tmp_path: Path) -> None:
    result = volspike("replay", DATA / "binance-usdm-capture-2021-07-22.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""  # one minute of data: nothing to alert, and nothing else on stdout
    err = result.stderr.decode()
    assert "1535 lines, 67 klines" in err
    assert "ignored streams: depth@100ms 764, bookTicker 613, aggTrade 91" in err
    assert "0 malformed" in err and "alerts: 0" in err


def test_a_gzip_recording_with_1h_and_1m_klines_gives_the_known_alerts(tmp_path: Path) -> None:
    path = tmp_path / "recording.jsonl.data"  # no .gz: detected by magic bytes
    path.write_bytes(gzip.compress(b"\n".join(recording()) + b"\n"))
    result = volspike("replay", path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    alerts = alerts_of(result.stdout)
    assert all(set(a) == ALERT_KEYS for a in alerts)
    got = [(a["symbol"], a["alertType"], a["timestamp"]) for a in alerts]
    assert got == [
        ("AAAUSDT", "SPIKE", "2023-11-14T23:10:30.000Z"),
        ("AAAUSDT", "HALF_UPDATE", "2023-11-14T23:30:00.000Z"),
        ("BBBUSDT", "SPIKE", "2023-11-14T23:40:20.000Z"),
        ("BBBUSDT", "FULL_UPDATE", "2023-11-15T00:00:00.002Z"),
        ("AAAUSDT", "FULL_UPDATE", "2023-11-15T00:00:00.010Z"),
    ]
    spike_a, half_a, spike_b, full_b, full_a = alerts
    assert (spike_a["currentVolume"], spike_a["previousVolume"], spike_a["volumeRatio"]) == (7e6, 2e6, 3.5)
    assert (
        spike_a["message"]
        == "AAA hourly volume $7.00M (3.50× prev) — VOLUME SPIKE!\nPrice: $2.5\nFunding: +0.0100%"
    )
    assert half_a["isUpdate"] is True and half_a["currentVolume"] == 7e6
    assert full_a["currentVolume"] == 9.5e6 and full_a["hourTimestamp"] == "2023-11-14T23:00:00.000Z"
    assert spike_b["previousVolume"] == pytest.approx(3e6) and spike_b["currentVolume"] == pytest.approx(
        9_000_025
    )
    assert full_b["currentVolume"] == pytest.approx(16_950_050)
    assert all(a["fundingRate"] == 0.0001 for a in alerts)
    err = result.stderr.decode()
    assert "alerts: 5 (SPIKE 2, HALF_UPDATE 1, FULL_UPDATE 2)" in err and "aggTrade 1" in err


def test_options_override_the_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "recording.jsonl"
    path.write_bytes(b"\n".join(recording()))
    stricter = alerts_of(volspike("replay", path, "--multiple", "4", cwd=tmp_path).stdout)
    assert [(a["symbol"], a["alertType"]) for a in stricter] == [
        ("BBBUSDT", "SPIKE"),  # 16,000,050 / 3M at minute 40's close
        ("AAAUSDT", "SPIKE"),  # 9M / 2M = 4.5 at minute 50: no HALF
        ("BBBUSDT", "FULL_UPDATE"),
        ("AAAUSDT", "FULL_UPDATE"),
    ]
    assert [a["volumeRatio"] for a in stricter if a["symbol"] == "AAAUSDT"] == [4.5, 4.75]
    assert alerts_of(volspike("replay", path, "--min-volume", "17000000", cwd=tmp_path).stdout) == []


def test_malformed_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    lines = recording()
    lines[3:3] = [b"garbage", b'{"stream":"aaausdt@kline_1h","data":{"e":"kline"}}', b"", b'{"stream":']
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"\n".join(lines))
    result = volspike("replay", path, cwd=tmp_path)
    assert result.returncode == 0
    assert len(alerts_of(result.stdout)) == 5
    err = result.stderr.decode()
    assert "3 malformed, 1 blank" in err
    assert "malformed: 3 (line 4: not JSON" in err and "line 5: kline is missing field 'k'" in err


def test_a_missing_file_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    result = volspike("replay", tmp_path / "nope.jsonl", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == b""
    [line] = result.stderr.decode().splitlines()
    assert "cannot open" in line and "nope.jsonl" in line


def test_replay_lines_gives_the_same_alerts_as_the_cli(tmp_path: Path) -> None:
    alerts, stats = replay_lines(recording(), SpikeDetector(3.0, 3_000_000))
    kinds = [a.alert_type.value for a in alerts]
    assert kinds == ["SPIKE", "HALF_UPDATE", "SPIKE", "FULL_UPDATE", "FULL_UPDATE"]
    assert stats.klines == 1 + 60 + 4 + 1 + 120 and stats.mark_prices == 250 and stats.malformed == 0


def _with_kline_field(line: bytes, field: str, value: object) -> bytes:
    msg = orjson.loads(line)
    if field == "E":
        msg["data"]["E"] = value
    else:
        msg["data"]["k"][field] = value
    return orjson.dumps(msg)


def test_replay_validates_the_fields_the_rule_reads_and_counts_the_frames_that_fail(tmp_path: Path) -> None:
    """The replay checks what the spike rule uses (symbol, interval, open and event time, quote
    volume, close, closed): a frame wrong there is counted malformed with the reason; a frame wrong
    only in a field the rule never reads is replayed (a live connection still refuses it)."""
    lines = recording()
    at = next(i for i, line in enumerate(lines) if b"kline_1m" in line)  # a BBB 1m kline
    good = lines[at]
    broken = [
        _with_kline_field(good, "q", "1e999"),  # not finite
        _with_kline_field(good, "q", "-5"),
        _with_kline_field(good, "c", "abc"),
        _with_kline_field(good, "c", True),
        _with_kline_field(good, "t", "1700000000000"),
        _with_kline_field(good, "E", None),
        _with_kline_field(good, "x", "false"),
        _with_kline_field(good, "s", ""),
    ]
    unused = _with_kline_field(good, "o", "not a price")  # open: not read by the rule
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"\n".join([*lines[: at + 1], *broken, unused, *lines[at + 1 :]]))
    result = volspike("replay", path, cwd=tmp_path)
    assert result.returncode == 0
    assert len(alerts_of(result.stdout)) == 5
    err = result.stderr.decode()
    assert f"{len(broken)} malformed" in err
    first = at + 2  # line numbers count from 1
    assert (
        f"line {first}: field 'q' is not finite" in err and f"line {first + 1}: field 'q' is negative" in err
    )
    assert f"line {first + 2}: field 'c' is not a number" in err
    # Numbers sent as JSON numbers rather than strings take the full parser's path: same alerts.
    numeric = [
        _with_kline_field(_with_kline_field(line, "q", float(orjson.loads(line)["data"]["k"]["q"])), "c", 2.5)
        if b"@kline_" in line
        else line
        for line in recording()
    ]
    assert [a.alert_type for a in replay_lines(numeric, SpikeDetector(3.0, 3_000_000))[0]] == [
        a.alert_type for a in replay_lines(recording(), SpikeDetector(3.0, 3_000_000))[0]
    ]


def test_the_rule_only_parse_gives_the_alerts_of_the_full_parse() -> None:
    from ingest.parsers import parse_frame

    full = SpikeDetector(3.0, 3_000_000)
    expected = []
    for line in recording():
        frame = parse_frame(line)
        if frame.__class__.__name__ == "Kline":
            expected += full.on_kline(frame)  # type: ignore[arg-type]
        elif frame.__class__.__name__ == "MarkPrices":
            for mark in frame.items:  # type: ignore[union-attr]
                full.set_mark(mark)
            expected += full.on_time(frame.event_time_ms)  # type: ignore[union-attr]
    alerts, _ = replay_lines(recording(), SpikeDetector(3.0, 3_000_000))
    assert alerts == expected and len(alerts) == 5
