"""Fuzzed exchange frames: the parsers raise only `ParseError`, never return a bad figure, and a
websocket reader fed bad frames counts each, logs at most once per period, and goes on."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.parsers import ControlReply, Ignored, Kline, MarkPrices, ParseError, Tickers, parse_frame
from ingest.streams import StreamManager
from simulator.config import SimConfig
from simulator.server import SimServer
from simulator.streams import METHODS, Connection, Hub
from tests.frame_fuzz import FRAMES, JSON_VALUES, SEEDS, TEXT, near_valid
from tests.test_streams import Recorder, options, running, wait_until

FAST = settings(max_examples=250, deadline=None, database=None)
"""Bounded in examples; in time by the module's timeout (no per-example deadline: the machine is shared)."""

pytestmark = pytest.mark.timeout(120)


def check_parse(raw: str | bytes) -> None:
    """`parse_frame` either raises ParseError or returns a frame whose figures are real."""
    try:
        frame = parse_frame(raw)
    except ParseError:
        return
    assert isinstance(frame, Kline | MarkPrices | Tickers | ControlReply | Ignored)
    if isinstance(frame, Kline):
        figures = (frame.open, frame.high, frame.low, frame.close, frame.volume, frame.quote_volume)
        assert all(isinstance(x, float) and math.isfinite(x) and x >= 0 for x in figures)
        assert all(type(x) is int for x in (frame.open_time_ms, frame.close_time_ms, frame.trades))
        assert frame.symbol and isinstance(frame.closed, bool)
    elif isinstance(frame, MarkPrices):
        for mark in frame.items:
            assert math.isfinite(mark.mark_price) and mark.mark_price >= 0 and mark.symbol
            assert mark.funding_rate is None or math.isfinite(mark.funding_rate)


def test_every_seed_parses() -> None:
    for seed in SEEDS:
        parse_frame(orjson.dumps(seed))


@FAST
@given(near_valid())
def test_near_valid_frames_parse_or_raise_parse_error_only(raw: str) -> None:
    check_parse(raw)
    check_parse(raw.encode())


@FAST
@given(FRAMES)
def test_arbitrary_frames_parse_or_raise_parse_error_only(raw: str | bytes) -> None:
    check_parse(raw)


SENTINEL = "SENTINELUSDT"


def sentinel_frame() -> str:
    """A valid kline of a symbol nobody trades: when it arrives, every frame before it was read."""
    return orjson.dumps(
        {
            "stream": "sentinelusdt@kline_1m",
            "data": {
                "e": "kline",
                "E": 1,
                "s": SENTINEL,
                "k": {
                    "t": 0,
                    "T": 59_999,
                    "s": SENTINEL,
                    "i": "1m",
                    "o": "1",
                    "c": "1",
                    "h": "1",
                    "l": "1",
                    "v": "1",
                    "n": 1,
                    "x": False,
                    "q": "1",
                    "V": "0",
                    "Q": "0",
                },
            },
        }
    ).decode()


def expected_malformed(frames: list[str | bytes]) -> int:
    bad = 0
    for raw in frames:
        try:
            parse_frame(raw)
        except ParseError:
            bad += 1
    return bad


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def read_through(frames: list[str | bytes]) -> None:
    lines = Lines()
    logger = logging.getLogger("ingest.streams")
    logger.addHandler(lines)
    rec = Recorder()
    try:
        async with SimServer(SimConfig(symbols=3, seed=5, update_interval=0.05)) as sim:
            manager = StreamManager(sim.ws_url, rec.sink, rec.on_reopen, options(max_streams=10))
            manager.set_symbols(["BTCUSDT", "ETHUSDT"])
            async with running(manager):
                await wait_until(lambda: rec.kline_symbols() == {"BTCUSDT", "ETHUSDT"})
                (conn,) = manager.connections
                before = conn.malformed
                sim.send_raw([*frames, sentinel_frame()])
                await wait_until(lambda: SENTINEL in rec.kline_symbols(), what="the frame after the fuzz")
                mark = len(rec.frames)
                await wait_until(
                    lambda: rec.kline_symbols(mark) >= {"BTCUSDT", "ETHUSDT"}, what="klines after"
                )

                bad = expected_malformed(frames)
                assert conn.malformed - before == bad
                assert lines.messages.count("malformed stream frame") == min(bad, 1)  # once per 10 s
                assert conn.reconnects == 0 and conn.state == "open"
    finally:
        logger.removeHandler(lines)


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(FRAMES, min_size=1, max_size=25))
def test_reader_counts_every_bad_frame_logs_once_and_reads_on(frames: list[str | bytes]) -> None:
    asyncio.run(read_through(frames))


REQUESTS = st.one_of(
    JSON_VALUES,
    TEXT,
    st.fixed_dictionaries(
        {"method": st.sampled_from([*METHODS, "subscribe", "PING", ""]) | st.integers()},
        optional={
            "params": st.lists(st.text(max_size=20) | st.integers() | st.booleans(), max_size=4) | st.text(),
            "id": st.integers(min_value=-5, max_value=2**70)
            | st.text(max_size=3)
            | st.none()
            | st.booleans(),
        },
    ).map(json.dumps),
)


@functools.cache
def sim_hub() -> Hub:
    """The request side of an exchange that is not started: `handle_request` needs no socket."""
    return SimServer(SimConfig(symbols=2, seed=3)).hub


@FAST
@given(REQUESTS)
def test_the_sim_answers_every_request_binance_shaped(text: str) -> None:
    hub = sim_hub()
    request = SimpleNamespace(path_qs="/market/ws", transport=None)
    conn = Connection(1, None, request, combined=False)  # type: ignore[arg-type]
    reply = hub.handle_request(conn, text)
    assert set(reply) in ({"result", "id"}, {"error", "id"})
    if "error" in reply:
        assert reply["error"]["code"] in (0, 1, 2, 3) and reply["error"]["msg"]
        assert reply["id"] is None or isinstance(reply["id"], int)
    assert len(conn.streams) <= hub.max_streams
    hub.remove(conn)
