"""Parsers on every line of a real Binance USDⓈ-M capture, and on malformed variants."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.parsers import (
    ControlReply,
    Ignored,
    Kline,
    MarkPrices,
    ParseError,
    Tickers,
    kline_from_rest,
    parse_frame,
    stream_kind,
)

CAPTURE = Path(__file__).parent / "data" / "binance-usdm-capture-2021-07-22.jsonl"

KLINE = {
    "stream": "ctkusdt@kline_1m",
    "data": {
        "e": "kline",
        "E": 1626992741424,
        "s": "CTKUSDT",
        "k": {
            "t": 1626992700000,
            "T": 1626992759999,
            "s": "CTKUSDT",
            "i": "1m",
            "f": 23961275,
            "L": 23961322,
            "o": "1.01000",
            "c": "1.01100",
            "h": "1.01100",
            "l": "1.01000",
            "v": "3917",
            "n": 48,
            "x": False,
            "q": "3957.89900",
            "V": "1729",
            "Q": "1748.01900",
            "B": "0",
        },
    },
}
MARK = {
    "e": "markPriceUpdate",
    "E": 1562305380000,
    "s": "BTCUSDT",
    "p": "11794.15000000",
    "i": "11784.62659091",
    "P": "11784.25641265",
    "r": "0.00038167",
    "T": 1562306400000,
}


def test_every_line_of_the_real_capture_parses_into_klines_or_counted_ignored_streams() -> None:
    kinds: Counter[str] = Counter()
    klines: list[Kline] = []
    lines = CAPTURE.read_bytes().splitlines()
    for line in lines:
        frame = parse_frame(line)
        if isinstance(frame, Kline):
            klines.append(frame)
        else:
            assert isinstance(frame, Ignored)
            kinds[frame.kind] += 1
    assert kinds == {"depth@100ms": 764, "bookTicker": 613, "aggTrade": 91}
    assert len(klines) == 67 == sum(1 for line in lines if b"@kline_1m" in line)
    # every kline agrees field by field with a plain json reading of its line
    for line, k in zip((ln for ln in lines if b"@kline_1m" in ln), klines, strict=True):
        raw = json.loads(line)["data"]
        assert (k.symbol, k.interval, k.open_time_ms, k.close_time_ms) == (
            raw["s"],
            raw["k"]["i"],
            raw["k"]["t"],
            raw["k"]["T"],
        )
        assert k.quote_volume == float(raw["k"]["q"]) and k.close == float(raw["k"]["c"])
        assert k.closed is raw["k"]["x"] and k.event_time_ms == raw["E"] and k.trades == raw["k"]["n"]
    closes = [k for k in klines if k.closed]
    assert closes, "the capture includes minute closes"
    assert all(k.close_time_ms - k.open_time_ms == 59_999 for k in klines)


def test_a_raw_ws_payload_parses_like_the_combined_stream_message() -> None:
    assert parse_frame(orjson.dumps(KLINE["data"])) == parse_frame(orjson.dumps(KLINE))
    assert parse_frame(json.dumps(KLINE)) == parse_frame(orjson.dumps(KLINE))  # str input too


def test_mark_price_single_and_array_streams() -> None:
    single = parse_frame(orjson.dumps({"stream": "btcusdt@markPrice@1s", "data": MARK}))
    assert isinstance(single, MarkPrices) and single.event_time_ms == 1562305380000
    [m] = single.items
    assert (m.symbol, m.mark_price, m.index_price, m.funding_rate, m.next_funding_time_ms) == (
        "BTCUSDT",
        11794.15,
        11784.62659091,
        0.00038167,
        1562306400000,
    )
    delivery = {**MARK, "s": "BTCUSDT_210625", "r": "", "T": 0, "E": MARK["E"] + 5}
    arr = parse_frame(orjson.dumps({"stream": "!markPrice@arr@1s", "data": [MARK, delivery]}))
    assert isinstance(arr, MarkPrices) and arr.event_time_ms == MARK["E"] + 5
    assert [x.funding_rate for x in arr.items] == [0.00038167, None]
    raw_arr = parse_frame(orjson.dumps([MARK, delivery]))
    assert raw_arr == arr


def test_ticker_streams_give_24h_change() -> None:
    full = {"e": "24hrTicker", "E": 5, "s": "BTCUSDT", "c": "110", "o": "100", "P": "10.000", "q": "1e9"}
    mini = {"e": "24hrMiniTicker", "E": 6, "s": "ETHUSDT", "c": "95", "o": "100", "q": "5"}
    frame = parse_frame(orjson.dumps({"stream": "!ticker@arr", "data": [full]}))
    assert isinstance(frame, Tickers) and frame.items[0].change_pct == 10.0
    mini_frame = parse_frame(orjson.dumps({"stream": "!miniTicker@arr", "data": [mini]}))
    assert isinstance(mini_frame, Tickers) and mini_frame.items[0].change_pct == pytest.approx(-5.0)


def test_subscription_replies_are_control_frames() -> None:
    assert parse_frame(b'{"result":null,"id":1}') == ControlReply(1, None, None)
    reply = parse_frame(b'{"error":{"code":2,"msg":"Invalid request"},"id":"7"}')
    assert reply == ControlReply("7", None, "code 2: Invalid request")
    assert parse_frame(b'{"result":["btcusdt@kline_1m"],"id":3}') == ControlReply(
        3, ["btcusdt@kline_1m"], None
    )


def test_unused_streams_are_ignored_without_parsing_their_data() -> None:
    frame = parse_frame(b'{"stream":"btcusdt@depth@100ms","data":"not even an object"}')
    assert frame == Ignored("btcusdt@depth@100ms", "depth@100ms")
    assert parse_frame(b'{"e":"aggTrade","E":1,"s":"X"}') == Ignored("aggTrade", "aggTrade")
    assert stream_kind("!bookTicker") == "bookTicker"


def _with(path: tuple[str, ...], value: Any) -> bytes:
    msg = json.loads(json.dumps(KLINE))
    target = msg
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return orjson.dumps(msg)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b'{"stream":"ctkusdt@kline_1m","data":{"e":"kline"',  # truncated
        b"[1, 2]",
        b"42",
        b'{"stream": 5, "data": {}}',
        b'{"stream":"ctkusdt@kline_1m"}',
        b'{"no_event": 1}',
        _with(("data", "k"), KeyError),
        _with(("data", "k"), "k"),
        _with(("data", "E"), KeyError),
        _with(("data", "E"), "1626992741424"),
        _with(("data", "k", "q"), KeyError),
        _with(("data", "k", "q"), "abc"),
        _with(("data", "k", "q"), "NaN"),
        _with(("data", "k", "q"), None),
        _with(("data", "k", "q"), [1]),
        _with(("data", "k", "x"), "false"),
        _with(("data", "k", "t"), 1.5),
        _with(("data", "k", "s"), ""),
        _with(("data", "k", "n"), True),
        orjson.dumps({"stream": "!markPrice@arr@1s", "data": [{**MARK, "p": None}]}),
        orjson.dumps({"stream": "!markPrice@arr@1s", "data": [MARK, 3]}),
        orjson.dumps({"stream": "btcusdt@markPrice", "data": {k: v for k, v in MARK.items() if k != "s"}}),
        orjson.dumps([KLINE["data"]]),
        b'{"result":null,"id":[1]}',
    ],
)
def test_malformed_input_raises_parse_error_only(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_frame(raw)


def test_rest_kline_rows() -> None:
    row = [
        1499040000000,
        "0.01634790",
        "0.80000000",
        "0.01575800",
        "0.01577100",
        "148976.11427815",
        1499040059999,
        "2434.19055334",
        308,
        "1756.87402397",
        "28.46694368",
        "0",
    ]
    k = kline_from_rest("BTCUSDT", row)
    assert (k.quote_volume, k.trades, k.closed, k.event_time_ms) == (2434.19055334, 308, True, 1499040059999)
    assert kline_from_rest("BTCUSDT", row, now_ms=1499040030000).closed is False
    assert kline_from_rest("BTCUSDT", row, now_ms=1499040060000).closed is True
    assert kline_from_rest("BTCUSDT", row, "1h").interval == "1h"
    for bad in (row[:5], [*row[:7], None, *row[8:]], "row"):
        with pytest.raises(ParseError):
            kline_from_rest("BTCUSDT", bad)  # type: ignore[arg-type]


def test_binance_error_reply_without_result_is_a_control_reply() -> None:
    reply = parse_frame(b'{"code": 2, "msg": "Invalid request: unknown variant", "id": 7}')
    assert isinstance(reply, ControlReply)
    assert reply.id == 7 and reply.error is not None and "Invalid request" in reply.error


@pytest.mark.parametrize("field", ["o", "h", "l", "c", "v", "q", "V", "Q"])
def test_a_negative_price_or_volume_in_a_kline_is_a_parse_error(field: str) -> None:
    frame = json.loads(json.dumps(KLINE))
    frame["data"]["k"][field] = "-1.5"
    with pytest.raises(ParseError, match="negative"):
        parse_frame(orjson.dumps(frame))


def test_a_negative_mark_price_is_a_parse_error_and_a_negative_funding_rate_is_not() -> None:
    assert isinstance(parse_frame(orjson.dumps({**MARK, "r": "-0.0007"})), MarkPrices)
    with pytest.raises(ParseError, match="negative"):
        parse_frame(orjson.dumps({**MARK, "p": "-1"}))
