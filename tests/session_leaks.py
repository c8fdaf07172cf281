"""A guard against aiohttp client sessions left unclosed (aiogram's Bot, stripe's AIOHTTPClient and
the tests' own clients all open one).

aiohttp warns "Unclosed client session" only when the garbage collector finds the session, which is
during whatever test runs then; under `filterwarnings = error` that unrelated test errors, and the
warning does not say where the session came from. With the guard installed every session notes where
it was made (a short stack: sessions are opened per client, not per request, so this costs little)
and an unclosed one is reported with that place.
"""

from __future__ import annotations

import traceback
import warnings
from typing import Any

import aiohttp

STACK_DEPTH = 14  # frames kept: enough to pass aiogram's and stripe's own frames into ours

_made_at: dict[int, str] = {}
_installed = False


class _Said:
    """Stands for the `warnings` module in aiohttp's `__del__` once the guard has warned: aiohttp's
    own warning would only repeat it without the place."""

    @staticmethod
    def warn(*_args: Any, **_kwargs: Any) -> None:
        pass


def install() -> None:
    """Wrap `ClientSession.__init__` (note the creation stack) and `__del__` (report it)."""
    global _installed
    if _installed:
        return
    _installed = True
    init, finalize = aiohttp.ClientSession.__init__, aiohttp.ClientSession.__del__

    def noting_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        _made_at[id(self)] = "".join(traceback.format_stack(limit=STACK_DEPTH)[:-1])
        init(self, *args, **kwargs)

    def reporting_del(self: aiohttp.ClientSession, _warnings: Any = warnings) -> None:
        where = _made_at.pop(id(self), None)
        if where is None or getattr(self, "closed", True):
            finalize(self, _warnings)
            return
        _warnings.warn(f"Unclosed client session, made at:\n{where}", ResourceWarning, stacklevel=1)
        finalize(self, _Said)

    aiohttp.ClientSession.__init__ = noting_init  # type: ignore[method-assign]
    aiohttp.ClientSession.__del__ = reporting_del  # type: ignore[method-assign]
