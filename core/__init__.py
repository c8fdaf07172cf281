"""VolSpike's domain core: pure rules and models (settings, tiers, alerts, texts, formats, names).

Imported by every other package, importing none of them and no I/O library (asyncpg, redis,
aiohttp, aiogram, websockets, stripe); `tests/test_core_purity.py` checks it."""

__version__ = "0.1.0"
