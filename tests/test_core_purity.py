"""core/ is the pure domain: importing every one of its modules loads no I/O library."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import core

IO_LIBRARIES = ("asyncpg", "redis", "aiohttp", "aiogram", "websockets", "stripe")


def test_importing_every_core_module_loads_no_io_library():
    modules = sorted(f"core.{m.name}" for m in pkgutil.iter_modules(core.__path__))
    assert {"core.settings", "core.tiers", "core.alerts", "core.i18n", "core.alert_message"} <= set(modules)
    # A fresh interpreter: this test process has imported the services (and their libraries) already.
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({IO_LIBRARIES!r}))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []
