"""What a broken or hostile client does to the HTTP layer is logged as a warning, not an error.

aiohttp answers a request it cannot parse (a request line over 8 KiB, more than 128 headers, a
malformed header) with 400 itself and logs it on `aiohttp.server` with `logger.exception`: an
ERROR with a traceback for what is the client's fault. `ClientFaultsAsWarnings`, installed on
that logger, turns those records into one WARNING line naming the client and the fault; any
other record (a real server error) passes unchanged.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"


class ClientFaultsAsWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = "malformed request refused (400): %s"
            record.args = (f"{type(exc).__name__}: {exc.message}"[:200],)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


_FILTER = ClientFaultsAsWarnings()


def install() -> None:
    """Idempotent: `addFilter` keeps one copy of the same filter."""
    logging.getLogger(SERVER_LOGGER).addFilter(_FILTER)
