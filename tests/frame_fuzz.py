"""Hypothesis strategies for exchange frames: arbitrary, and near-valid mutations of real ones.

Seeds are real payloads: every kline line and a sample of the other streams of the recorded
Binance USDⓈ-M capture (tests/data), the documented mark-price payload, and the replies to
SUBSCRIBE / LIST_SUBSCRIPTIONS. A near-valid frame is a seed with one to three fields deleted or
replaced by a wrong type, a huge number, a NaN-like string or an empty value."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

CAPTURE = Path(__file__).parent / "data" / "binance-usdm-capture-2021-07-22.jsonl"

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


def _seeds() -> list[Any]:
    lines = CAPTURE.read_bytes().splitlines()
    klines = [json.loads(line) for line in lines if b"@kline_1m" in line]
    others = [json.loads(line) for line in lines[:40] if b"@kline_1m" not in line]
    return [
        *klines,
        *others,
        *(k["data"] for k in klines[:5]),  # raw-stream (`/ws`) form
        {"stream": "!markPrice@arr@1s", "data": [MARK, {**MARK, "s": "ETHUSDT"}]},
        {"stream": "btcusdt@markPrice", "data": MARK},
        [MARK],
        {"result": None, "id": 1},
        {"result": ["btcusdt@kline_1m"], "id": 2},
        {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 3},
    ]


SEEDS = _seeds()

BAD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.sampled_from(["NaN", "nan", "inf", "-Infinity", "1e400", "-1e999", "", " ", "0x1F", "1_000", "١٢٣"]),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key (or index) path inside `value`."""
    out: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


@st.composite
def near_valid(draw: st.DrawFn) -> str:
    payload = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(payload)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = payload
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(BAD_VALUES)
    return json.dumps(payload)  # big integers kept; NaN and Infinity written as bare tokens


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
).map(json.dumps)

TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=120)
"""Text a websocket text frame can carry (valid UTF-8: no lone surrogates)."""

FRAMES: st.SearchStrategy[str | bytes] = st.one_of(near_valid(), JSON_VALUES, TEXT, st.binary(max_size=120))
"""Any frame: `str` goes out as a text frame, `bytes` as a binary frame."""
