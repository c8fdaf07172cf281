"""The guard of `tests/session_leaks.py`: an aiohttp session collected unclosed is reported with
the place that made it; a closed one says nothing."""

from __future__ import annotations

import gc
import warnings

import aiohttp
import pytest


def _made_here() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


async def test_an_unclosed_session_is_reported_with_where_it_was_made() -> None:
    session = _made_here()
    with pytest.warns(ResourceWarning, match=r"(?s)made at:.*test_session_leaks\.py.*in _made_here"):
        del session
        gc.collect()


async def test_a_closed_session_is_collected_without_a_word() -> None:
    session = _made_here()
    await session.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del session
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
