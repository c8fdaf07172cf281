"""Binance USDⓈ-M websocket and REST payloads → typed records.

One parser per stream type; the detector never sees raw JSON. `parse_frame` accepts what
a websocket connection delivers:

- a combined-stream message (`/stream?streams=...`): `{"stream": "btcusdt@kline_1m", "data": {...}}`,
- a raw payload (`/ws/<stream>`): the `data` part alone (an object, or a list for `!…@arr`),
- a reply to SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS: `{"result": null, "id": 1}` or
  `{"error": {"code": 2, "msg": "..."}, "id": 1}` or `{"code": 2, "msg": "...", "id": 1}`.

Anything malformed raises `ParseError` (a `ValueError`) with a short reason and nothing
else. Streams we do not use (aggTrade, depth, bookTicker, ...) come back as `Ignored` after
only the stream name was looked at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

__all__ = [
    "ControlReply",
    "Frame",
    "Ignored",
    "Kline",
    "MarkPrice",
    "MarkPrices",
    "ParseError",
    "RuleKline",
    "Ticker",
    "Tickers",
    "kline_from_rest",
    "parse_frame",
    "parse_kline",
    "parse_mark_price",
    "parse_ticker",
    "stream_kind",
]


class ParseError(ValueError):
    """A message that is not what Binance sends: not JSON, or a field missing or mistyped."""


@dataclass(frozen=True, slots=True)
class Kline:
    """One kline update (`e: kline`); `closed` is the final frame of its interval.

    Real payload (tests/data/binance-usdm-capture-2021-07-22.jsonl)::

        {"stream":"ctkusdt@kline_1m","data":{"e":"kline","E":1626992741424,"s":"CTKUSDT",
         "k":{"t":1626992700000,"T":1626992759999,"s":"CTKUSDT","i":"1m","f":23961275,
              "L":23961322,"o":"1.01000","c":"1.01100","h":"1.01100","l":"1.01000",
              "v":"3917","n":48,"x":false,"q":"3957.89900","V":"1729","Q":"1748.01900","B":"0"}}}
    """

    symbol: str
    interval: str  # "1m", "1h", ...
    open_time_ms: int  # k.t
    close_time_ms: int  # k.T (open + interval - 1 ms)
    open: float
    high: float
    low: float
    close: float
    volume: float  # base asset (k.v)
    quote_volume: float  # quote asset (k.q): the alert rule's volume
    trades: int  # k.n
    taker_buy_volume: float  # k.V
    taker_buy_quote: float  # k.Q
    closed: bool  # k.x
    event_time_ms: int  # E (for REST rows: see kline_from_rest)


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a call per field
class RuleKline:
    """What the spike rule reads of a kline update, and all that `parse_frame(..., rule_only=True)`
    (the replay's parse) validates: a frame malformed in these fields is a ParseError, the other
    fields are neither read nor checked (a live connection parses and validates them all)."""

    symbol: str
    interval: str
    open_time_ms: int
    quote_volume: float
    close: float
    closed: bool
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """Mark price and funding of one symbol (`e: markPriceUpdate`).

    Real payload (Binance docs, `<symbol>@markPrice@1s`; `!markPrice@arr@1s` sends a list of them)::

        {"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",
         "i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}

    Delivery contracts send `"r": ""` and `"T": 0`: funding_rate is then None.
    """

    symbol: str
    mark_price: float
    index_price: float | None
    funding_rate: float | None
    next_funding_time_ms: int
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class MarkPrices:
    """A mark-price frame: one item for `<symbol>@markPrice`, all symbols for `!markPrice@arr`.

    `event_time_ms` is the largest `E` in the frame (0 for an empty array): ingest advances
    the detector's clock with it.
    """

    items: tuple[MarkPrice, ...]
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class Ticker:
    """Rolling 24h statistics of one symbol (`24hrTicker` or `24hrMiniTicker`).

    Real payload (Binance docs, `!ticker@arr` sends a list of them)::

        {"e":"24hrTicker","E":123456789,"s":"BTCUSDT","p":"0.0015","P":"250.00","w":"0.0018",
         "c":"0.0025","Q":"10","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18",
         "O":0,"C":86400000,"F":0,"L":18150,"n":18151}

    The mini ticker has no `P`; change_pct is then computed from `o` and `c`.
    """

    symbol: str
    last_price: float
    open_price: float
    change_pct: float
    quote_volume: float
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class Tickers:
    items: tuple[Ticker, ...]
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class ControlReply:
    """Reply to a SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS request, matched by `id`."""

    id: int | str | None
    result: Any
    error: str | None  # "code 2: Invalid request: ..." when Binance rejected the request


@dataclass(frozen=True, slots=True)
class Ignored:
    """A stream we do not use. `kind` is the stream without its symbol: `depth@100ms`, `aggTrade`."""

    stream: str
    kind: str


Frame = Kline | RuleKline | MarkPrices | Tickers | ControlReply | Ignored


def stream_kind(stream: str) -> str:
    """`btcusdt@depth@100ms` → `depth@100ms`; `!markPrice@arr@1s` → `markPrice@arr@1s`."""
    if stream.startswith("!"):
        return stream[1:]
    at = stream.find("@")
    return stream[at + 1 :] if at >= 0 else stream


# --- field helpers: each raises ParseError on a missing or mistyped value ----------------

_NUMBER_TYPES = (str, float, int)


def _num(value: object, name: str) -> float:
    if value.__class__ in _NUMBER_TYPES:
        try:
            result = float(value)
        except ValueError:
            raise ParseError(f"field {name!r} is not a number: {value!r}") from None
        if result - result == 0.0:  # finite (nan and ±inf fail)
            return result
        raise ParseError(f"field {name!r} is not finite: {value!r}")
    raise ParseError(f"field {name!r} is not a number: {value!r}")


def _amount(value: object, name: str) -> float:
    """A price or volume: a finite number that is not negative (Binance never sends one)."""
    result = _num(value, name)
    if result < 0.0:
        raise ParseError(f"field {name!r} is negative: {value!r}")
    return result


def _int(value: object, name: str) -> int:
    if value.__class__ is int:
        return value
    raise ParseError(f"field {name!r} is not an integer: {value!r}")


def _str(value: object, name: str) -> str:
    if value.__class__ is str and value:
        return value
    raise ParseError(f"field {name!r} is not a non-empty string: {value!r}")


def _obj(value: object, name: str) -> dict[str, Any]:
    if value.__class__ is dict:
        return value
    raise ParseError(f"{name} is not an object")


# --- one parser per stream type ---------------------------------------------------------


def parse_kline(data: object) -> Kline:
    """The `data` of a `<symbol>@kline_<interval>` stream."""
    d = _obj(data, "kline event")
    try:
        k = _obj(d["k"], "field 'k'")
        closed = k["x"]
        if closed.__class__ is not bool:
            raise ParseError(f"field 'x' is not a boolean: {closed!r}")
        return Kline(
            _str(k["s"], "s"),
            _str(k["i"], "i"),
            _int(k["t"], "t"),
            _int(k["T"], "T"),
            _amount(k["o"], "o"),
            _amount(k["h"], "h"),
            _amount(k["l"], "l"),
            _amount(k["c"], "c"),
            _amount(k["v"], "v"),
            _amount(k["q"], "q"),
            _int(k["n"], "n"),
            _amount(k["V"], "V"),
            _amount(k["Q"], "Q"),
            closed,
            _int(d["E"], "E"),
        )
    except KeyError as exc:
        raise ParseError(f"kline is missing field {exc.args[0]!r}") from None


_INF = float("inf")


def _rule_kline(data: Any) -> RuleKline:
    """`parse_kline` for the rule's fields only, without a call per field (the replay's hot
    loop): the common shape (numbers as strings, as Binance sends them) is checked inline; any
    other goes to `parse_kline`, which accepts what it accepts or says precisely what is wrong."""
    try:
        k = data["k"]
        symbol, interval, start, event, closed = k["s"], k["i"], k["t"], data["E"], k["x"]
        raw_volume, raw_close = k["q"], k["c"]
        if (
            raw_volume.__class__ is str
            and raw_close.__class__ is str
            and symbol.__class__ is str
            and symbol
            and interval.__class__ is str
            and interval
            and start.__class__ is int
            and event.__class__ is int
            and closed.__class__ is bool
        ):
            volume, close = float(raw_volume), float(raw_close)
            if 0.0 <= volume < _INF and 0.0 <= close < _INF:  # finite, not negative (nan fails)
                return RuleKline(symbol, interval, start, volume, close, closed, event)
    except (KeyError, TypeError, ValueError):
        pass
    full = parse_kline(data)  # raises the precise ParseError when a rule field is wrong
    return RuleKline(
        full.symbol, full.interval, full.open_time_ms, full.quote_volume, full.close, full.closed,
        full.event_time_ms,
    )  # fmt: skip


def parse_mark_price(data: object) -> MarkPrice:
    """One `markPriceUpdate` object (see `MarkPrice`)."""
    d = _obj(data, "markPriceUpdate")
    try:
        rate = d["r"]
        index = d.get("i")
        return MarkPrice(
            _str(d["s"], "s"),
            _amount(d["p"], "p"),
            None if index is None or index == "" else _amount(index, "i"),
            None if rate == "" or rate is None else _num(rate, "r"),
            _int(d["T"], "T"),
            _int(d["E"], "E"),
        )
    except KeyError as exc:
        raise ParseError(f"markPriceUpdate is missing field {exc.args[0]!r}") from None


def parse_ticker(data: object) -> Ticker:
    """One `24hrTicker` or `24hrMiniTicker` object (see `Ticker`)."""
    d = _obj(data, "ticker")
    try:
        last = _amount(d["c"], "c")
        opened = _amount(d["o"], "o")
        pct = d.get("P")  # absent from the mini ticker
        change = _num(pct, "P") if pct is not None else _pct(opened, last)
        return Ticker(_str(d["s"], "s"), last, opened, change, _amount(d["q"], "q"), _int(d["E"], "E"))
    except KeyError as exc:
        raise ParseError(f"ticker is missing field {exc.args[0]!r}") from None


def _pct(opened: float, last: float) -> float:
    return (last - opened) / opened * 100.0 if opened else 0.0


def _mark_prices(data: object) -> MarkPrices:
    items = tuple(map(parse_mark_price, data)) if isinstance(data, list) else (parse_mark_price(data),)
    return MarkPrices(items, max((m.event_time_ms for m in items), default=0))


def _tickers(data: object) -> Tickers:
    items = tuple(map(parse_ticker, data)) if isinstance(data, list) else (parse_ticker(data),)
    return Tickers(items, max((t.event_time_ms for t in items), default=0))


_KLINE, _MARK, _TICKER = 0, 1, 2


@lru_cache(maxsize=4096)
def _classify(stream: str) -> int | Ignored:
    """What a stream carries, decided once per stream name (the cache is bounded)."""
    kind = stream_kind(stream)
    if kind.startswith("kline_"):
        return _KLINE
    if kind.startswith("markPrice"):
        return _MARK
    if kind.startswith(("ticker", "miniTicker")):
        return _TICKER
    return Ignored(stream, kind)


_EVENT_PARSERS: dict[str, Callable[[Any], Frame]] = {
    "kline": parse_kline,
    "markPriceUpdate": _mark_prices,
    "24hrTicker": _tickers,
    "24hrMiniTicker": _tickers,
}


def _raw_payload(payload: object) -> Frame:
    """A `/ws` payload without the combined-stream wrapper: dispatch on the event type `e`."""
    first = payload
    if payload.__class__ is list:
        if not payload:
            return Ignored("[]", "empty array")
        first = payload[0]
    if first.__class__ is not dict:
        raise ParseError("payload is neither an object nor an array of objects")
    event = first.get("e")
    if event.__class__ is not str:
        raise ParseError("payload has no event type 'e'")
    parser = _EVENT_PARSERS.get(event)
    if parser is None:
        return Ignored(event, event)
    if event == "kline" and payload.__class__ is list:
        raise ParseError("kline payload is an array")
    return parser(payload)


def parse_frame(raw: bytes | str, *, rule_only: bool = False) -> Frame:
    """Parse one websocket message (see the module docstring for the shapes accepted).
    `rule_only`: a kline of a combined stream comes back as a `RuleKline`, only the fields the
    spike rule reads validated (the replay: what-if runs over recordings, read as fast as may be)."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc.msg}") from None
    if msg.__class__ is dict:
        stream = msg.get("stream")
        if stream is not None:
            if stream.__class__ is not str:
                raise ParseError("field 'stream' is not a string")
            data = msg.get("data")
            if data is None:
                raise ParseError("combined-stream message has no 'data'")
            what = _classify(stream)
            if what.__class__ is Ignored:
                return what
            if what == _KLINE:
                return _rule_kline(data) if rule_only else parse_kline(data)
            if what == _MARK:
                return _mark_prices(data)
            return _tickers(data)
        if "id" in msg and ("result" in msg or "error" in msg or ("code" in msg and "msg" in msg)):
            return _control(msg)
    return _raw_payload(msg)


def _control(msg: dict[str, Any]) -> ControlReply:
    ident = msg["id"]
    if ident is not None and ident.__class__ not in (int, str):
        raise ParseError("reply 'id' is neither an integer nor a string")
    error = msg.get("error")
    if error is None and "code" in msg and "msg" in msg:
        # Binance's documented error reply form: {"code": 2, "msg": "Invalid request: ...", "id": 1}
        error = {"code": msg["code"], "msg": msg["msg"]}
    if error is None:
        return ControlReply(ident, msg.get("result"), None)
    text = f"code {error.get('code')}: {error.get('msg')}" if error.__class__ is dict else str(error)
    return ControlReply(ident, msg.get("result"), text)


def kline_from_rest(symbol: str, row: list[Any], interval: str = "1m", now_ms: int | None = None) -> Kline:
    """One row of `GET /fapi/v1/klines`.

    Real row (Binance docs)::

        [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100",
         "148976.11427815", 1499644799999, "2434.19055334", 308, "1756.87402397",
         "28.46694368", "17928899.62484339"]

    Index 7 is the quote volume. `closed` is `close_time < now_ms` when `now_ms` is given
    (the last row of a live query is the open interval), else True. `event_time_ms` is
    `now_ms` when given, else the close time.
    """
    if row.__class__ is not list or len(row) < 11:
        raise ParseError("kline row is not an array of at least 11 fields")
    _str(symbol, "symbol")
    close_time = _int(row[6], "close time")
    return Kline(
        symbol,
        interval,
        _int(row[0], "open time"),
        close_time,
        _amount(row[1], "open"),
        _amount(row[2], "high"),
        _amount(row[3], "low"),
        _amount(row[4], "close"),
        _amount(row[5], "volume"),
        _amount(row[7], "quote volume"),
        _int(row[8], "trades"),
        _amount(row[9], "taker buy volume"),
        _amount(row[10], "taker buy quote volume"),
        True if now_ms is None else close_time < now_ms,
        close_time if now_ms is None else now_ms,
    )
