"""Logging: JSON lines, and no `extra` key that would crash a log call at run time."""

from __future__ import annotations

import ast
import io
import logging
from pathlib import Path

import orjson

from core.logs import JsonFormatter

ROOT = Path(__file__).resolve().parents[1]
RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def test_no_log_call_uses_a_reserved_extra_key() -> None:
    """`extra={"created": ...}` raises KeyError inside logging, i.e. crashes the caller."""
    offenders = []
    for package in ("volspike", "db", "ingest", "bot", "webapp"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.keyword) and node.arg == "extra" and isinstance(node.value, ast.Dict):
                    for key in node.value.keys:
                        if isinstance(key, ast.Constant) and key.value in RESERVED:
                            offenders.append(f"{path.relative_to(ROOT)}:{node.value.lineno} {key.value}")
    assert offenders == []


def test_json_formatter_writes_one_object_per_line_with_extras() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("volspike.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("alert sent", extra={"symbol": "BTCUSDT", "latency_ms": 1.5})
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue().strip()
    assert "\n" not in line
    data = orjson.loads(line)
    assert data["msg"] == "alert sent" and data["level"] == "warning"
    assert data["symbol"] == "BTCUSDT" and data["latency_ms"] == 1.5
