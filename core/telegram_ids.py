"""Telegram user ids: positive, with at most 52 significant bits (the Bot API's own words: "a
64-bit integer or double-precision float type are safe for storing this identifier").

A signed source (initData, the Log In With Telegram id_token, Stripe metadata we wrote) naming
any other number names nobody: it is refused, never stored as a user.
"""

from __future__ import annotations

MAX_USER_ID = 1 << 52


def is_user_id(value: int) -> bool:
    return 0 < value < MAX_USER_ID
