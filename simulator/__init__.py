"""`volspike sim`: a Binance USDⓈ-M futures compatible exchange simulator on localhost.

It speaks Binance's real wire formats (REST /fapi/v1/..., WebSocket /market/ws and
/market/stream), with deterministic prices and volumes, injectable spikes, a movable clock and
fault injection (429/418, dropped/refused/silent WebSockets, malformed frames).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from .config import ScheduledSpike, SimConfig
from .market import SpikeInfo
from .server import SimServer

__all__ = ["ScheduledSpike", "SimConfig", "SimServer", "SpikeInfo", "configure_parser", "run"]

log = logging.getLogger("volspike.sim")


def _spike(text: str) -> ScheduledSpike:
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected SYMBOL:MULTIPLE:MINUTE_OFFSET, got {text!r}")
    symbol, multiple, offset = parts
    try:
        return ScheduledSpike(symbol=symbol, multiple=float(multiple), minute_offset=float(offset))
    except ValueError:
        raise argparse.ArgumentTypeError(f"MULTIPLE and MINUTE_OFFSET must be numbers in {text!r}") from None


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    defaults = SimConfig()
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9900, help="port for REST and WebSocket (default: 9900)")
    parser.add_argument(
        "--symbols",
        type=int,
        default=defaults.symbols,
        help=f"tradeable USDT perpetuals (default: {defaults.symbols})",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="market seed (default: 1)")
    parser.add_argument(
        "--speed", type=_positive, default=defaults.speed, help="sim seconds per real second (default: 1)"
    )
    parser.add_argument(
        "--interval",
        type=_positive,
        default=defaults.update_interval,
        help="seconds between kline stream updates (default: 0.25)",
    )
    parser.add_argument(
        "--phases",
        type=int,
        default=defaults.update_phases,
        help="slots the update interval is split into, each sending a share of the streams "
        f"(default: {defaults.update_phases}; 1 sends every stream in one burst)",
    )
    parser.add_argument(
        "--start-time",
        type=int,
        default=None,
        metavar="MS",
        help="sim time at start, in ms since the epoch (default: now); the clock runs on from there",
    )
    parser.add_argument(
        "--spike",
        type=_spike,
        action="append",
        default=[],
        metavar="SYMBOL:MULTIPLE:MINUTE_OFFSET",
        help="schedule a volume spike MINUTE_OFFSET sim minutes after start (repeatable)",
    )
    parser.add_argument(
        "--weight-limit",
        type=int,
        default=defaults.weight_limit,
        help="REST request weight per minute (default: 2400)",
    )
    parser.add_argument(
        "--late-close-probability",
        type=_probability,
        default=defaults.late_close_probability,
        help="chance a closed kline (x: true) comes after the next minute's first frame",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="compute every symbol's last 24 hours before listening (ticker/24hr then answers at once; "
        "about 90 ms a symbol)",
    )


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        host=args.host,
        port=args.port,
        symbols=args.symbols,
        seed=args.seed,
        speed=args.speed,
        start_time=args.start_time,
        update_interval=args.interval,
        update_phases=max(1, args.phases),
        spikes=list(args.spike),
        weight_limit=args.weight_limit,
        late_close_probability=args.late_close_probability,
        warm_day=args.warm,
    )


async def run(args: argparse.Namespace) -> int:
    """Serve until cancelled; cancellation closes every connection and stops cleanly."""
    sim = SimServer(config_from_args(args))
    await sim.start()
    try:
        log.info(
            "sim listening: BINANCE_REST_URL=%s BINANCE_WS_URL=%s (%d symbols, seed %d, speed %g)",
            sim.rest_url,
            sim.ws_url,
            args.symbols,
            args.seed,
            args.speed,
        )
        await asyncio.Event().wait()
    finally:
        await sim.stop()
    return 0
