"""`volspike`: the one console script. Thin: parse, load settings, hand over to a composition root."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any

from core.errors import ConfigError, ServiceUnreachable
from core.logs import setup_logging
from core.settings import Settings, load_settings
from volspike import __version__

log = logging.getLogger("volspike")

SHUTDOWN_GRACE = 10.0

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]


async def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from db.migrate import migrate

    applied = await migrate(settings.database_url)
    print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else "; schema is up to date"))
    return 0


async def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from volspike.runtime import run_services

    return await run_services(settings, ingest=True, bot=False, webapp=False)


async def _bot(args: argparse.Namespace, settings: Settings) -> int:
    from volspike.runtime import run_services

    if settings.bot_token is None:
        raise ConfigError("invalid setting BOT_TOKEN: required for `volspike bot`")
    return await run_services(settings, ingest=False, bot=True, webapp=False)


async def _webapp(args: argparse.Namespace, settings: Settings) -> int:
    from volspike.runtime import run_services

    return await run_services(settings, ingest=False, bot=False, webapp=True)


async def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from volspike.doctor import doctor

    return await doctor(settings)


async def _healthcheck(args: argparse.Namespace, settings: Settings) -> int:
    from volspike.healthcheck import healthcheck

    return await healthcheck(settings, args.service)


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from volspike.runtime import run_services

    if args.migrate:
        await _migrate(args, settings)
    return await run_services(settings, ingest=True, bot=settings.bot_token is not None, webapp=True)


async def _sim(args: argparse.Namespace, settings: Settings) -> int:
    import simulator as sim

    return await sim.run(args)


async def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import replay

    return await replay.run(args, settings)


def _from_checkout(module: str) -> ModuleType:
    """A module of bench/ (which uses tests/fakes): only in a checkout of the repository."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "suite.py").is_file() or not (root / "tests" / "fakes").is_dir():
        raise ConfigError(
            "`volspike bench` and `volspike soak` run from a checkout of the repository: they use "
            "bench/ and tests/fakes, which this installation does not have (git clone, then make bench)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(module)


async def _bench(args: argparse.Namespace, settings: Settings) -> int:
    suite = _from_checkout("bench.suite")
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    size = args.size or args.mode
    result: int = await suite.main(
        size, args.json, Path(args.chart) if args.chart else None, only, steady=args.steady
    )
    return result


async def _soak(args: argparse.Namespace, settings: Settings) -> int:
    soak = _from_checkout("bench.soak")
    result: int = await soak.run(args)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="volspike",
        description="VolSpike: volume-spike alerts for Binance USDⓈ-M perpetuals, delivered on Telegram.",
        epilog="Settings come from the environment and a .env file; see .env.example.",
    )
    parser.add_argument("--version", action="version", version=f"volspike {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("migrate", help="create the database if missing and apply pending SQL migrations")
    p.set_defaults(func=_migrate)

    p = sub.add_parser("ingest", help="follow every USDⓈ-M perpetual, store 1m candles, detect spikes")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("bot", help="the Telegram bot: commands, settings and the alert delivery worker")
    p.set_defaults(func=_bot)

    p = sub.add_parser("webapp", help="the Mini App, JSON API, UDF datafeed, webhooks, /health, /metrics")
    p.set_defaults(func=_webapp)

    p = sub.add_parser("run", help="ingest, bot and webapp in one process (the small-deployment default)")
    p.add_argument("--no-migrate", dest="migrate", action="store_false", help="do not migrate first")
    p.set_defaults(func=_run)

    p = sub.add_parser(
        "doctor", help="check every setting and dependency; one line each; exit 0 only when all pass"
    )
    p.set_defaults(func=_doctor)

    p = sub.add_parser(
        "healthcheck", help="exit 0 when SERVICE reports healthy (for container health checks)"
    )
    from volspike.healthcheck import SERVICES

    p.add_argument("service", choices=SERVICES, help="the service to ask")
    p.set_defaults(func=_healthcheck)

    import simulator as sim

    p = sub.add_parser("sim", help="a Binance-compatible exchange simulator on localhost")
    sim.configure_parser(p)
    p.set_defaults(func=_sim)

    from ingest import replay

    p = sub.add_parser(
        "replay", help="run a recorded combined stream through the detector; print alerts as JSON lines"
    )
    replay.configure_parser(p)
    p.set_defaults(func=_replay)

    p = sub.add_parser("bench", help="run every benchmark (from a checkout); one table, its JSON and a chart")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="minutes (default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="the issue's sizes")
    p.add_argument("--size", choices=("tiny", "quick", "full"), help="the sizes by name (tiny: the test's)")
    p.add_argument("--json", type=Path, default=Path("bench-results/results.json"), help="the table as JSON")
    p.add_argument("--chart", default="bench-results/latencies.png", help="PNG of the latency distributions")
    p.add_argument("--only", help="comma-separated bench modules (replay_throughput,fanout,...)")
    p.add_argument(
        "--steady",
        action="store_true",
        help="the steady state: a 30-day data set for 10,000 users (built once, kept) beside an empty one",
    )
    p.set_defaults(func=_bench, mode="quick")

    p = sub.add_parser("soak", help="the whole system against the simulator for a long run (from a checkout)")
    p.add_argument("--duration", default="1h", help="90s, 30m, 1h (default 1h)")
    p.add_argument("--symbols", type=int, default=600)
    p.add_argument("--users", type=int, default=3, help="elite users waiting for every alert")
    p.add_argument("--spike-every", type=float, default=60.0, help="seconds between scheduled spikes")
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    p.add_argument("--json", type=Path, help="also write the report as JSON here")
    p.add_argument("--logs", type=Path, help="directory for the processes' logs (default: a temp dir)")
    p.set_defaults(func=_soak)
    return parser


async def _main_task(coro: Coroutine[Any, Any, int]) -> int:
    """Run `coro`; SIGINT/SIGTERM cancel it, and it gets SHUTDOWN_GRACE seconds to finish."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)
    stopping = asyncio.Event()

    def _stop(signame: str) -> None:
        if not stopping.is_set():
            log.info("shutting down", extra={"signal": signame})
            stopping.set()
            task.cancel()
            loop.call_later(SHUTDOWN_GRACE, _overdue)

    def _overdue() -> None:
        """A task asked to stop that is still running after the grace period swallowed its
        cancellation (or is stuck in a cleanup): say which, and cancel each of them again."""
        if task.done():
            return
        stuck = [t for t in asyncio.all_tasks(loop) if t.cancelling() and not t.done() and t is not task]
        log.error(
            "shutdown overdue: cancelling the tasks still running again",
            extra={"grace_s": SHUTDOWN_GRACE, "tasks": sorted(t.get_name() for t in stuck)},
        )
        for t in stuck:
            t.cancel()
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop, sig.name)
    try:
        return await task
    except asyncio.CancelledError:
        if stopping.is_set():
            return 0
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"volspike: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    try:
        return asyncio.run(_main_task(args.func(args, settings)))
    except ConfigError as exc:
        print(f"volspike: {exc}", file=sys.stderr)
        return 2
    except ServiceUnreachable as exc:
        print(f"volspike: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
