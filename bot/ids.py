"""Numbers typed in commands or carried in callback data: Telegram user and chat ids, row ids,
day counts.

`str.isdigit()` accepts digits that `int()` refuses (`²`, `٣`) and numbers PostgreSQL's bigint
cannot hold; `parse_int` is the one parser for them: ASCII digits only, within bigint.
"""

from __future__ import annotations

import re

_INTEGER = re.compile(r"-?[0-9]{1,19}")
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


def parse_int(text: str | None) -> int | None:
    """`text` as an integer that fits a bigint, or None."""
    if text is None or not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if BIGINT_MIN <= value <= BIGINT_MAX else None


def parse_positive(text: str | None) -> int | None:
    """A user id, row id or count: an integer > 0 (None otherwise)."""
    value = parse_int(text)
    return value if value is not None and value > 0 else None


def parse_negative(text: str | None) -> int | None:
    """A group or channel id: an integer < 0 (None otherwise)."""
    value = parse_int(text)
    return value if value is not None and value < 0 else None
