"""Soak: the whole system against the simulator for a long run, and what it left behind.

    .venv/bin/volspike soak [--duration 1h] [--symbols 600] [--users 3] [--spike-every 60] [--json PATH]

Starts `volspike sim` (`--symbols` symbols), the Telegram look-alike (tests/fakes, its own
process), a throw-away PostgreSQL database and Redis prefix, and `volspike ingest`, `volspike bot`
and `volspike webapp` as three processes, exactly as deployed. `--users` elite users wait for
alerts. Every `--spike-every` seconds a spike is triggered on a symbol not spiked in this hour
(`POST /sim/spike`); the webapp's `/health` is asked on every sample.

Reports, per process, resident memory (VmRSS, sampled every `--sample-every` s): first, last, peak
and the growth per hour (least-squares slope after the first fifth of the run; target: flat);
alerts expected (scheduled spikes × users) versus delivered (the SPIKE message for that symbol at
the look-alike, once per user, counted from its own call log), duplicates, and every WARNING/ERROR
line the three processes logged (JSON lines on stderr), grouped and counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from redis.asyncio import Redis

from bench.detection_latency import percentile
from bench.fanout import RemoteFake
from bench.ingest_memory import SIM_WARM_TIMEOUT, free_port, proc_status, start_sim, wait_http
from bench.rows import Row, Section
from bench.webapp_server import REDIS_URL, bench_database
from core.errors import ConfigError
from core.redis_names import RedisNames
from core.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("ingest", "bot", "webapp")
FIRST_USER = 20_000_001
# The SPIKE message's first line at the look-alike (its first 40 characters): `<b>BTC hourly volume`.
HEADLINE = re.compile(r"^<b>(?:\[SIMULATED\] )?(?P<asset>\S+) hourly volume ")


def parse_duration(text: str) -> float:
    """`3600`, `90s`, `30m`, `1h` → seconds."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    text = text.strip().lower()
    factor = units.get(text[-1:], 0.0)
    try:
        value = float(text[:-1]) * factor if factor else float(text)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (try 90s, 30m, 1h)") from None
    if value <= 0:
        raise ValueError("the duration must be positive")
    return value


@dataclass(slots=True)
class Memory:
    """One process's VmRSS samples: (seconds since start, MiB)."""

    samples: list[tuple[float, float]] = field(default_factory=list)

    def summary(self, warm_up: float) -> dict[str, float]:
        rss = [mib for _, mib in self.samples]
        steady = [(t, mib) for t, mib in self.samples if t >= warm_up] or self.samples
        return {
            "first_mib": rss[0] if rss else float("nan"),
            "last_mib": rss[-1] if rss else float("nan"),
            "peak_mib": max(rss, default=float("nan")),
            "growth_mib_per_hour": slope(steady) * 3600.0,
            "samples": len(rss),
        }


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def log_problems(paths: dict[str, Path]) -> list[dict[str, Any]]:
    """Every WARNING/ERROR/CRITICAL line, grouped by (service, level, logger, message), counted.
    A stderr line that is not one of our JSON lines (a traceback, a crash) counts as an error."""
    groups: Counter[tuple[str, str, str, str]] = Counter()
    for service, path in paths.items():
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                groups[(service, "stderr", "", line.strip()[:200])] += 1
                continue
            if not isinstance(record, dict):
                continue
            level = str(record.get("level", "")).lower()
            if level in ("warning", "error", "critical"):
                groups[(service, level, str(record.get("logger", "")), str(record.get("msg", ""))[:200])] += 1
    return [
        {"service": s, "level": lv, "logger": lg, "message": m, "count": n}
        for (s, lv, lg, m), n in groups.most_common()
    ]


@dataclass(slots=True)
class SoakRun:
    duration: float
    symbols: int
    users: int
    spike_every: float
    sample_every: float
    memory: dict[str, Memory] = field(default_factory=lambda: {s: Memory() for s in SERVICES})
    spiked: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic(), symbol)
    health_failures: int = 0


def _log_dir(wanted: Path | None) -> Path:
    logs = Path(wanted or tempfile.mkdtemp(prefix="volspike-soak-"))
    logs.mkdir(parents=True, exist_ok=True)
    return logs


async def _create_users(database_url: str, count: int) -> list[int]:
    ids = list(range(FIRST_USER, FIRST_USER + count))
    conn = await asyncpg.connect(database_url)
    try:
        await conn.copy_records_to_table(
            "users", records=[(i, "en", "elite") for i in ids], columns=["id", "language", "tier"]
        )
        await conn.copy_records_to_table("user_settings", records=[(i,) for i in ids], columns=["user_id"])
    finally:
        await conn.close()
    return ids


async def _spawn(command: str, env: dict[str, str], log_path: Path) -> asyncio.subprocess.Process:
    with log_path.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "volspike.cli", command),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


async def _armed(redis: Redis, names: RedisNames, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while True:
            raw = await redis.get(names.ingest_health)
            health = orjson.loads(raw) if raw else {}
            if health.get("armed") and health.get("ok"):
                return
            await asyncio.sleep(0.5)


async def soak(
    duration: float,
    *,
    symbols: int = 600,
    users: int = 3,
    spike_every: float = 60.0,
    sample_every: float = 5.0,
    settle: float = 20.0,
    seed: int = 7,
    logs_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the soak; return its report (JSON-able)."""
    run = SoakRun(duration, symbols, users, spike_every, sample_every)
    rng = random.Random(seed)
    logs = _log_dir(logs_dir)
    prefix = f"vssoak:{os.getpid()}:"
    names = RedisNames(prefix)
    fake = RemoteFake()
    tg_url = fake.start()
    sim_port, web_port = free_port(), free_port()
    sim = await start_sim(sim_port, symbols)
    procs: dict[str, asyncio.subprocess.Process] = {}
    redis = Redis.from_url(REDIS_URL)
    try:
        async with bench_database() as database_url:
            from tests.fakes.telegram_api import TOKEN

            ids = await _create_users(database_url, users)
            await wait_http(f"http://127.0.0.1:{sim_port}/fapi/v1/ping", timeout=SIM_WARM_TIMEOUT)
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": REDIS_URL,
                "REDIS_PREFIX": prefix,
                "BINANCE_REST_URL": f"http://127.0.0.1:{sim_port}",
                "BINANCE_WS_URL": f"ws://127.0.0.1:{sim_port}",
                "BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": tg_url,
                "WEBAPP_HOST": "127.0.0.1",
                "WEBAPP_PORT": str(web_port),
                "WEBAPP_URL": "https://volspike.test",
                "HISTORY_HOURS": "2",
                "LOG_LEVEL": "INFO",
                # each scheduled spike's own message is what the soak times and counts; at a short
                # --spike-every, four within a minute would otherwise go out as one burst digest
                "DIGEST_MIN_SYMBOLS": "0",
            }
            for name in SERVICES:
                procs[name] = await _spawn(name, env, logs / f"{name}.log")
            try:
                await _armed(redis, names, timeout=300)
                await wait_http(f"http://127.0.0.1:{web_port}/health/db", timeout=300)  # a loaded machine
                started = time.monotonic()
                followed = sorted(
                    k.decode() if isinstance(k, bytes) else k for k in await redis.hkeys(names.market)
                )  # ingest's universe
                async with aiohttp.ClientSession() as http:
                    await _drive(run, rng, http, sim_port, web_port, procs, followed, started, database_url)
                    await asyncio.sleep(settle)  # the last spike's messages
                assets = await _symbols(database_url)
                calls = fake.send_calls()
            finally:  # the services stop before their database is dropped
                await _stop(list(procs.values()))
    finally:
        await _stop([*procs.values(), sim])
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        fake.stop()
    return build_report(run, ids, assets, calls, {s: logs / f"{s}.log" for s in SERVICES}, procs)


async def _stop(procs: list[asyncio.subprocess.Process]) -> None:
    """SIGTERM, 20 s to finish (the services' own grace is 10 s), then SIGKILL."""
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
    for proc in procs:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 20)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _symbols(database_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        return {
            r["symbol"]: r["base_asset"] for r in await conn.fetch("SELECT symbol, base_asset FROM symbols")
        }
    finally:
        await conn.close()


async def _spiked_this_hour(database_url: str, hour: int) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT symbol FROM alerts WHERE alert_type = 'SPIKE' AND hour_ts = to_timestamp($1)", hour * 3600
        )
    finally:
        await conn.close()
    return {r["symbol"] for r in rows}


async def _drive(
    run: SoakRun,
    rng: random.Random,
    http: aiohttp.ClientSession,
    sim_port: int,
    web_port: int,
    procs: dict[str, asyncio.subprocess.Process],
    symbols: list[str],
    started: float,
    database_url: str,
) -> None:
    """Until the duration is over: sample memory and /health, trigger the scheduled spikes, each
    on a symbol with no SPIKE yet in this hour (one SPIKE per symbol and hour: a symbol the
    simulator's own bursts already spiked would get no second message)."""
    used: set[tuple[str, int]] = set()
    next_spike = min(run.spike_every, run.duration / 2)
    next_sample = 0.0
    min_volume = 2 * load_settings().spike_min_quote_volume  # as the services read it
    while (elapsed := time.monotonic() - started) < run.duration:
        for name, proc in procs.items():
            if proc.returncode is not None:
                raise RuntimeError(f"volspike {name} exited with {proc.returncode} during the soak")
        if elapsed >= next_sample:
            for name, proc in procs.items():
                run.memory[name].samples.append((elapsed, proc_status(proc.pid)["VmRSS"] / 1024))
            try:
                async with http.get(
                    f"http://127.0.0.1:{web_port}/health", timeout=aiohttp.ClientTimeout(5)
                ) as r:
                    run.health_failures += r.status != 200
            except (aiohttp.ClientError, TimeoutError):
                run.health_failures += 1
            next_sample += run.sample_every
        if elapsed >= next_spike and elapsed < run.duration - 5:
            hour = int(time.time() // 3600)
            spiked = await _spiked_this_hour(database_url, hour)
            fresh = [s for s in symbols if (s, hour) not in used and s not in spiked]
            turning = time.gmtime().tm_min == 59 and time.time() % 60 > 50  # the hour is about to end
            if fresh and not turning:
                symbol = rng.choice(fresh)
                body = {"symbol": symbol, "multiple": 5.0, "min_quote_volume": min_volume}
                async with http.post(f"http://127.0.0.1:{sim_port}/sim/spike", json=body) as resp:
                    resp.raise_for_status()
                used.add((symbol, hour))
                run.spiked.append((time.monotonic(), symbol))
                next_spike += run.spike_every
        await asyncio.sleep(0.25)


def build_report(
    run: SoakRun,
    ids: list[int],
    assets: dict[str, str],
    calls: list[tuple[int, float, str]],
    log_paths: dict[str, Path],
    procs: dict[str, asyncio.subprocess.Process],
) -> dict[str, Any]:
    arrivals: dict[str, list[tuple[float, int]]] = {}  # asset -> (time.monotonic(), chat) of SPIKE messages
    for chat, at, text in calls:
        found = HEADLINE.match(text)
        if found:
            arrivals.setdefault(found["asset"], []).append((at, chat))
    users = set(ids)
    delivered = duplicates = 0
    missing: list[dict[str, Any]] = []
    first: list[float] = []  # ms from the spike's trigger (in the simulator's next frame) to the first user's
    last: list[float] = []  # ... and to the last user's message
    spiked_assets = set()
    # A symbol is spiked at most once an hour, but may be again in a later hour: a message belongs
    # to the latest trigger of its symbol before it.
    triggers: dict[str, list[float]] = {}
    for triggered, symbol in run.spiked:
        triggers.setdefault(assets.get(symbol, symbol.removesuffix("USDT")), []).append(triggered)
    for triggered, symbol in run.spiked:
        asset = assets.get(symbol, symbol.removesuffix("USDT"))
        spiked_assets.add(asset)
        until = min((t for t in triggers[asset] if t > triggered), default=math.inf)
        after = [(at, chat) for at, chat in arrivals.get(asset, []) if triggered <= at < until]
        per_chat = Counter(chat for _, chat in after if chat in users)
        delivered += len(per_chat)
        duplicates += sum(n - 1 for n in per_chat.values())
        if len(per_chat) < len(users):
            missing.append({"symbol": symbol, "users_without": len(users) - len(per_chat)})
        if after:
            first.append((min(at for at, _ in after) - triggered) * 1000)
            last.append((max(at for at, _ in after) - triggered) * 1000)
    other = sum(len(v) for asset, v in arrivals.items() if asset not in spiked_assets)
    return {
        "duration_s": run.duration,
        "symbols": run.symbols,
        "users": run.users,
        "spikes_scheduled": len(run.spiked),
        "alerts_expected": len(run.spiked) * len(users),
        "alerts_delivered": delivered,
        "missing": missing,
        "duplicates": duplicates,
        "other_spike_messages": other,
        "health_failures": run.health_failures,
        "pipeline_ms": {"first": first, "last": last},
        "memory": {name: mem.summary(warm_up=run.duration / 5) for name, mem in run.memory.items()},
        "exit_codes": {name: proc.returncode for name, proc in procs.items()},
        "log_problems": log_problems(log_paths),
        "logs": {name: str(path) for name, path in log_paths.items()},
    }


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\nsoak: {report['duration_s']:.0f} s, {report['symbols']} simulator symbols, "
        f"{report['users']} elite users, {report['spikes_scheduled']} scheduled spikes\n"
    )
    print(f"{'process':<8} {'first MiB':>10} {'last MiB':>9} {'peak MiB':>9} {'MiB/hour':>9}  target: flat")
    for name, mem in report["memory"].items():
        print(
            f"{name:<8} {mem['first_mib']:10.1f} {mem['last_mib']:9.1f} {mem['peak_mib']:9.1f} "
            f"{mem['growth_mib_per_hour']:+9.1f}"
        )
    print(
        f"\nalerts expected {report['alerts_expected']}, delivered {report['alerts_delivered']}, "
        f"duplicated {report['duplicates']}; other SPIKE messages (organic bursts) "
        f"{report['other_spike_messages']}; /health not 200: {report['health_failures']}"
    )
    problems = report["log_problems"]
    print(f"\nWARNING/ERROR lines: {sum(p['count'] for p in problems)} in {len(problems)} group(s)")
    for p in problems:
        print(f"  {p['count']:>5}  {p['service']:<6} {p['level']:<8} {p['logger']}: {p['message']}")
    print(f"\nlogs: {', '.join(report['logs'].values())}")


async def rows(
    duration: float = 3600.0, symbols: int = 600, users: int = 3, spike_every: float = 60.0
) -> Section:
    """`volspike bench`'s rows from a (short) soak: resident memory of each service, alerts
    expected versus delivered, and spike trigger → first / last user's message, all three services
    running as deployed."""
    report = await soak(duration, symbols=symbols, users=users, spike_every=spike_every, sample_every=2.0)
    out = []
    for name, mem in report["memory"].items():
        growth = mem["growth_mib_per_hour"]
        out.append(
            Row(
                f"{name} resident memory (VmRSS, last sample)",
                mem["last_mib"],
                "MiB",
                "< 300",
                f"peak {mem['peak_mib']:.1f} MiB, growth {growth:+.1f} MiB/h over {duration:g} s",
                mem["last_mib"] < 300,
            )
        )
    expected, delivered = report["alerts_expected"], report["alerts_delivered"]
    out.append(
        Row(
            "soak: alerts delivered (sendMessage at the look-alike)",
            delivered,
            "alerts",
            f"= {expected} expected",
            f"{report['spikes_scheduled']} spikes × {users} users, {report['duplicates']} duplicated, "
            f"{sum(p['count'] for p in report['log_problems'])} WARNING/ERROR lines",
            delivered == expected and report["duplicates"] == 0,
        )
    )
    pipeline = report["pipeline_ms"]
    for which, bound in (("first", 1000), ("last", 2000)):  # the last elite user: issue #12's 2 s
        values = pipeline[which]
        for q in (0.5, 0.95):
            figure = percentile(values, q)
            out.append(
                Row(
                    f"spike → {which} user's sendMessage p{round(q * 100)} (full pipeline)",
                    figure,
                    "ms",
                    f"< {bound}",
                    f"{len(values)} spikes, {users} elite users, {symbols} symbols",
                    figure < bound,
                )
            )
    samples = {f"full pipeline: spike → {k} sendMessage": v for k, v in pipeline.items()}
    return Section(out, samples)


async def run(args: argparse.Namespace) -> int:
    """`volspike soak` (its arguments are in volspike/cli.py)."""
    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise ConfigError(f"--duration: {exc}") from None
    report = await soak(
        duration,
        symbols=args.symbols,
        users=args.users,
        spike_every=args.spike_every,
        sample_every=args.sample_every,
        logs_dir=args.logs,
    )
    print_report(report)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    ok = report["alerts_delivered"] == report["alerts_expected"] and report["duplicates"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    from volspike.cli import main

    sys.exit(main(["soak", *sys.argv[1:]]))
