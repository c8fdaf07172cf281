"""`volspike replay FILE`: a recorded combined stream through the real parser and detector.

One websocket message per line, plain or gzip (told apart by the magic bytes, not the
name). Every alert goes to stdout as one JSON line (`Alert.to_json_dict()`), nothing else;
a summary goes to stderr at the end. Malformed lines are counted, never fatal. No database
or Redis is touched, and time is the recording's own, so an hour of data replays in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO

import orjson

from core.alerts import Alert
from core.settings import Settings
from ingest.detector import SpikeDetector
from ingest.parsers import Ignored, Kline, MarkPrices, ParseError, RuleKline, Tickers, parse_frame

GZIP_MAGIC = b"\x1f\x8b"
MALFORMED_SHOWN = 5
CHUNK_LINES = 50_000


@dataclass(slots=True)
class ReplayStats:
    lines: int = 0
    blank: int = 0
    klines: int = 0
    mark_prices: int = 0  # mark-price records (an `!markPrice@arr` frame holds many)
    tickers: int = 0
    control: int = 0
    ignored: Counter[str] = field(default_factory=Counter)  # by stream kind, e.g. "depth@100ms"
    malformed: int = 0
    malformed_lines: list[tuple[int, str]] = field(default_factory=list)  # first few: (line, reason)
    alerts: Counter[str] = field(default_factory=Counter)  # by alert type

    def summary(self) -> str:
        out = [
            f"replay: {self.lines} lines, {self.klines} klines, {self.mark_prices} mark prices, "
            f"{self.tickers} tickers, {self.control} control replies, "
            f"{sum(self.ignored.values())} ignored, {self.malformed} malformed, {self.blank} blank"
        ]
        if self.ignored:
            kinds = ", ".join(f"{kind} {n}" for kind, n in self.ignored.most_common())
            out.append(f"ignored streams: {kinds}")
        if self.malformed:
            shown = "; ".join(f"line {n}: {reason}" for n, reason in self.malformed_lines)
            more = ", ..." if self.malformed > len(self.malformed_lines) else ""
            out.append(f"malformed: {self.malformed} ({shown}{more})")
        kinds = ", ".join(f"{kind} {self.alerts[kind]}" for kind in ("SPIKE", "HALF_UPDATE", "FULL_UPDATE"))
        out.append(f"alerts: {sum(self.alerts.values())} ({kinds})")
        return "\n".join(out)


def iter_replay(lines: Iterable[bytes], detector: SpikeDetector, stats: ReplayStats) -> Iterator[Alert]:
    """Yield alerts as the recording produces them; `stats` is filled as lines go by (line
    numbers continue from `stats.lines`, so a file can be fed in chunks). Klines are parsed for
    the rule's fields only (`parse_frame(..., rule_only=True)`); the hot loop keeps its names and
    counters local."""
    ignored = stats.ignored
    number = stats.lines
    klines = 0
    parse, on_kline = parse_frame, detector.on_kline
    try:
        for number, line in enumerate(lines, start=stats.lines + 1):
            try:
                frame = parse(line, rule_only=True)
            except ParseError as exc:
                if not line or line.isspace():
                    stats.blank += 1
                    continue
                stats.malformed += 1
                if len(stats.malformed_lines) < MALFORMED_SHOWN:
                    stats.malformed_lines.append((number, str(exc)))
                continue
            if isinstance(frame, RuleKline | Kline):  # the hot case first
                klines += 1
                alerts = on_kline(frame)
                if not alerts:
                    continue
            elif isinstance(frame, Ignored):
                ignored[frame.kind] += 1
                continue
            elif isinstance(frame, MarkPrices):
                stats.mark_prices += len(frame.items)
                for mark in frame.items:
                    detector.set_mark(mark)
                alerts = detector.on_time(frame.event_time_ms)
            elif isinstance(frame, Tickers):
                stats.tickers += len(frame.items)
                continue
            else:  # ControlReply
                stats.control += 1
                continue
            for alert in alerts:
                stats.alerts[alert.alert_type.value] += 1
                yield alert
    finally:
        stats.lines = number
        stats.klines += klines


def replay_lines(lines: Iterable[bytes], detector: SpikeDetector) -> tuple[list[Alert], ReplayStats]:
    """Run lines through the detector; for tests and the benchmark."""
    stats = ReplayStats()
    alerts = list(iter_replay(lines, detector, stats))
    return alerts, stats


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", metavar="FILE", type=Path, help="recording: one message per line, gzip or plain"
    )
    parser.add_argument(
        "--multiple",
        type=_positive,
        default=None,
        help="spike multiple (default: SPIKE_MULTIPLE from the settings)",
    )
    parser.add_argument(
        "--min-volume",
        type=_positive,
        default=None,
        help="minimum hourly quote volume (default: SPIKE_MIN_QUOTE_VOLUME from the settings)",
    )


def _open_recording(path: Path) -> IO[bytes]:
    """The file's lines as bytes, gunzipped when it starts with the gzip magic bytes."""
    raw = path.open("rb")
    if raw.read(2) == GZIP_MAGIC:
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    raw.seek(0)
    return raw


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """The CLI command: 0 when the file was read (malformed lines included), 2 when it cannot
    be opened, 1 when reading it failed part way (e.g. a truncated gzip)."""
    path: Path = args.file
    multiple = settings.spike_multiple if args.multiple is None else args.multiple
    min_volume = settings.spike_min_quote_volume if args.min_volume is None else args.min_volume
    if multiple <= 0:
        print("volspike replay: --multiple must be positive", file=sys.stderr)
        return 2
    try:
        stream = _open_recording(path)
    except OSError as exc:
        print(f"volspike replay: cannot open {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    detector = SpikeDetector(multiple, min_volume)
    stats = ReplayStats()
    out = sys.stdout.buffer
    code = 0
    try:
        with stream:
            while chunk := list(islice(stream, CHUNK_LINES)):
                for alert in iter_replay(chunk, detector, stats):
                    out.write(orjson.dumps(alert.to_json_dict()) + b"\n")
                await asyncio.sleep(0)  # let a signal handler (Ctrl-C) in between chunks
    except (OSError, EOFError) as exc:  # corrupt or truncated gzip, I/O error
        print(f"volspike replay: cannot read {path} after line {stats.lines}: {exc}", file=sys.stderr)
        code = 1
    finally:
        out.flush()
        print(stats.summary(), file=sys.stderr)
    return code
