"""Comparing a secret a client sent with ours, in constant time, whatever bytes it sent.

aiohttp hands header bytes that are not UTF-8 to us as lone surrogates (`\\xff` → `'\\udcff'`);
`hmac.compare_digest` refuses non-ASCII `str` and `str.encode()` refuses surrogates, either of
which turned a forged header into a 500. Encoding with `surrogatepass` never fails, and a
string that is not ours never equals ours.
"""

from __future__ import annotations

import hmac


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))
