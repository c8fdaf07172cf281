"""What an elite trader waits for: one alert → N elite subscribers, the time from the alert (its
XADD to the stream) until the first and until the last sendMessage at the Telegram look-alike,
at Telegram's free broadcast limit and with paid broadcasts.

    .venv/bin/python -m bench.elite_latency [--sizes 100,1000,10000] [--modes free,paid]

The real delivery service (`bot.delivery.run_delivery`) runs against a throw-away PostgreSQL
database and Redis prefix; the look-alike runs in a child process and ENFORCES Telegram's limits
(30 msg/s without `allow_paid_broadcast`, 1,000 msg/s with it; 429 over them) and bills 0.1 Stars
per paid message over the free amount. "free": `TELEGRAM_GLOBAL_RATE` (25) for everyone; "paid":
`TELEGRAM_PAID_BROADCAST=true`, elite alerts carry `allow_paid_broadcast`. Each run sends one alert
to the first N of the users (the others are paused). Target: the last of 1,000 within 2 s with
paid broadcasts. The free-limit runs take N / 25 seconds (10,000 users: about 400 s).

`measure(...)` returns the rows (name / figure / target) for `volspike bench`; `main()` prints them.
Environment: VOLSPIKE_BENCH_PG, VOLSPIKE_BENCH_REDIS (as bench.fanout).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg
from redis.asyncio import Redis

from bench.fanout import (
    RemoteFake,
    _alert,
    _create_users,
    _service,
    _settled,
    _wait,
    delivery_stack,
)
from core.redis_names import RedisNames
from core.settings import Settings

SIZES = (100, 1_000, 10_000)
MODES = ("free", "paid")
TARGET_LAST_OF_1000_PAID = 2.0  # seconds


async def measure(sizes: tuple[int, ...] = SIZES, modes: tuple[str, ...] = MODES) -> list[dict[str, Any]]:
    """One alert per (mode, size); rows with the first and last message times and the cost."""
    rows: list[dict[str, Any]] = []
    async with delivery_stack(limits=True) as stack:
        settings, pool, redis, bot, fake = stack.settings, stack.pool, stack.redis, stack.bot, stack.fake
        ids = await _create_users(pool, max(sizes))
        for mode in modes:
            config = settings.model_copy(update={"telegram_paid_broadcast": mode == "paid"})
            async with _service(bot, config, pool, redis):
                for index, size in enumerate(sizes):
                    rows += await _one(pool, redis, fake, config, ids, mode, size, f"E{mode[0]}{index}")
    return rows


async def _one(
    pool: asyncpg.Pool,
    redis: Redis,
    fake: RemoteFake,
    settings: Settings,
    ids: list[int],
    mode: str,
    size: int,
    asset: str,
) -> list[dict[str, Any]]:
    audience = ids[:size]
    await asyncio.sleep(1.1)  # the look-alike's one-second window empty: each run starts fresh
    await pool.execute("UPDATE user_settings SET paused = NOT (user_id = ANY($1::bigint[]))", audience)
    refused_before, billed_before, _peak = fake.limits()
    alert = await _alert(pool, f"{asset.upper()}USDT")
    xadd_at = time.monotonic()
    await redis.xadd(RedisNames(settings.redis_prefix).alerts_stream, {"alert": alert.to_json()})
    rate = settings.telegram_global_rate if mode == "free" else 900.0
    await _wait(lambda: _settled(pool, alert.id), timeout=size / rate * 3 + 60)
    times = sorted(at for _, at, text in fake.send_calls() if text.startswith(f"<b>{alert.asset} "))
    refused, billed, _peak = fake.limits()
    sent = await pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE alert_id = $1 AND status = 'sent'", alert.id
    )
    label = "free limit (25 msg/s)" if mode == "free" else "paid broadcasts"
    last = times[-1] - xadd_at
    target = f"< {TARGET_LAST_OF_1000_PAID:.0f} s" if mode == "paid" and size == 1_000 else ""
    return [
        {
            "name": f"{label}, {size} elite: alert → first sendMessage (ms)",
            "figure": f"{(times[0] - xadd_at) * 1000:.1f}",
            "target": "",
        },
        {
            "name": f"{label}, {size} elite: alert → last sendMessage (s)",
            "figure": f"{last:.2f}",
            "target": target,
        },
        {
            "name": f"{label}, {size} elite: sent / 429 answered",
            "figure": f"{sent} / {refused - refused_before}",
            "target": f"{size} / 0",
        },
        {
            "name": f"{label}, {size} elite: Stars billed",
            "figure": f"{(billed - billed_before) / 10:.1f}",
            "target": "",
        },
    ]


async def rows(sizes: tuple[int, ...] = SIZES, modes: tuple[str, ...] = MODES) -> Any:
    """`volspike bench`'s rows (a bench.rows.Section) from `measure()`."""
    from bench.rows import Row, Section

    section = Section()
    for r in await measure(sizes, modes):
        name, figure, target = str(r["name"]), str(r["figure"]), str(r["target"])
        if " / " in figure:  # "sent / 429 answered": reported as the sent count, the 429s beside it
            sent, refused = (int(x) for x in figure.split(" / "))
            wanted = int(target.split(" / ")[0])
            section.rows.append(
                Row(name, sent, "messages", f"{wanted}, 0 refused", f"{refused} answered 429", sent == wanted)
            )
            continue
        unit = name.rsplit("(", 1)[1].rstrip(")") if name.endswith(")") else "Stars"
        value = float(figure)
        met = value < TARGET_LAST_OF_1000_PAID if target else None
        section.rows.append(Row(name.rsplit(" (", 1)[0], value, unit, target or "report only", "", met))
    return section


def print_table(rows: list[dict[str, Any]]) -> None:
    width = max(len(row["name"]) for row in rows)
    print(f"{'metric':<{width}}  {'value':>12}  target")
    print("-" * (width + 24))
    for row in rows:
        print(f"{row['name']:<{width}}  {row['figure']:>12}  {row['target']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated audience sizes")
    parser.add_argument("--modes", default=",".join(MODES), help="free, paid or both")
    args = parser.parse_args()
    sizes = tuple(int(size) for size in args.sizes.split(","))
    modes = tuple(mode for mode in args.modes.split(",") if mode in MODES)
    print_table(asyncio.run(measure(sizes, modes)))


if __name__ == "__main__":
    main()
