"""VolSpike: volume-spike alerts for Binance USDⓈ-M perpetuals on Telegram.

This package is the composition root: the command line (`cli`), the runtime that wires the
services (`runtime`), `doctor` and `healthcheck`. Nothing imports it; what the services share is
in `core` (the pure domain) and `db` (PostgreSQL, Redis).
"""

from core import __version__ as __version__
