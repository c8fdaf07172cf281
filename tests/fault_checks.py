"""The checks every fault scenario ends with: no alert lost, none twice, no candle missing,
figures real.

Telegram's side is the look-alike's record of `sendMessage` and `editMessageText` calls (an update
edits the chat's SPIKE message): a call it received counts as delivered, whatever happened to the
sender afterwards. An update that went out as a new message although its chat's SPIKE of the hour
is `sent` (a message to edit was on record, and nothing in a scenario deletes it) is a second
message for the symbol-hour: a problem. An alert message is recognised by its
headline (`<ASSET> hourly volume ...`, `UPDATE — hour closed: <ASSET> ...`, `HALF-UPDATE —
half-hour: <ASSET> ...`), so the checks count, per chat,
the messages of each (asset, alert type) and compare them with the alert and delivery rows in
PostgreSQL.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import asyncpg

from core.clock import ms_from_utc, utc_from_ms
from tests.fakes.telegram_api import FakeTelegram
from tests.fault_processes import HOUR_MS, MINUTE_MS, SimControl

HEADLINE = re.compile(r"^(?:\[SIMULATED\] )?(?:(HALF-UPDATE|UPDATE) — [^:]+: (\S+) |(\S+) hourly volume )")
TYPE_OF_PREFIX = {None: "SPIKE", "HALF-UPDATE": "HALF_UPDATE", "UPDATE": "FULL_UPDATE"}
# A row Telegram may or may not have: the crash came between the request and its answer.
UNKNOWN = "unknown"
FINAL = {"sent", UNKNOWN}


@dataclass(frozen=True)
class AlertRow:
    id: int
    symbol: str
    asset: str
    alert_type: str
    hour_ms: int
    detected_ms: int
    current_volume: float
    previous_volume: float
    ratio: float
    price: float


async def alert_rows(db_url: str) -> list[AlertRow]:
    """The public alerts (the scenarios' chats keep the default thresholds: these are theirs; the
    crossings of own thresholds, `level_multiple` set, go to nobody here)."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT id, symbol, asset, alert_type, hour_ts, detected_at, current_volume, previous_volume, "
            "volume_ratio, price FROM alerts WHERE level_multiple IS NULL ORDER BY id"
        )
    finally:
        await conn.close()
    return [
        AlertRow(
            r["id"],
            r["symbol"],
            r["asset"],
            r["alert_type"],
            ms_from_utc(r["hour_ts"]),
            ms_from_utc(r["detected_at"]),
            r["current_volume"],
            r["previous_volume"],
            r["volume_ratio"],
            r["price"],
        )
        for r in rows
    ]


def alert_messages(tg: FakeTelegram, chat_id: int) -> Counter[tuple[str, str]]:
    """(asset, alert type) -> how many alert messages the look-alike received for `chat_id`."""
    seen: Counter[tuple[str, str]] = Counter()
    for call in [*tg.calls_to("sendMessage", chat_id), *tg.calls_to("editMessageText", chat_id)]:
        match = HEADLINE.search(re.sub(r"<[^>]+>", "", call.text))
        if match is not None:
            seen[(match.group(2) or match.group(3), TYPE_OF_PREFIX[match.group(1)])] += 1
    return seen


def _listed(tg: FakeTelegram, chat: int, message_id: int | None, asset: str) -> bool:
    """Whether the chat's digest message `message_id`, as it reads now, has a line for `asset`."""
    message = tg.message(chat, message_id) if message_id is not None else None
    if message is None or message.text is None:
        return False
    return any(line.startswith(f"{asset} ") for line in message.text.splitlines()[1:])


async def delivery_problems(
    db_url: str, tg: FakeTelegram, chats: list[int], *, allow_unknown: bool = False
) -> list[str]:
    """What breaks "every alert reaches every chat once"; empty when it holds.

    Every (alert, chat) has a delivery row in a final state; per (chat, asset, type) the messages
    Telegram received number at least the `sent` rows and at most `sent` + `unknown` rows (an
    unknown row may or may not have reached Telegram; only `allow_unknown` scenarios may have one).
    A SPIKE that went out in the chat's burst digest (`digest_since`) is not a message of its own:
    the digest message, as the chat shows it now, must list it.
    """
    alerts = await alert_rows(db_url)
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT alert_id, chat_id, status, edited, message_id, digest_since FROM deliveries"
        )
    finally:
        await conn.close()
    status = {(r["alert_id"], r["chat_id"]): r["status"] for r in rows}
    edited = {(r["alert_id"], r["chat_id"]): r["edited"] for r in rows}
    in_digest = {
        (r["alert_id"], r["chat_id"]): r["message_id"] for r in rows if r["digest_since"] is not None
    }
    spikes = {(a.symbol, a.hour_ms): a.id for a in alerts if a.alert_type == "SPIKE"}
    problems: list[str] = []
    for alert in alerts:
        spike = spikes.get((alert.symbol, alert.hour_ms))
        if alert.alert_type == "SPIKE" or spike is None:
            continue
        for chat in chats:
            second = status.get((alert.id, chat)) == "sent" and not edited[(alert.id, chat)]
            if second and status.get((spike, chat)) == "sent" and (spike, chat) not in in_digest:
                problems.append(f"alert {alert.id} to chat {chat} sent as a second message of its hour")
    for chat in chats:
        sent: Counter[tuple[str, str]] = Counter()
        unknown: Counter[tuple[str, str]] = Counter()
        for alert in alerts:
            key = (alert.asset, alert.alert_type)
            state = status.get((alert.id, chat))
            if state is None:
                problems.append(f"alert {alert.id} {key} has no delivery row for chat {chat} (fan-out lost)")
            elif (alert.id, chat) in in_digest:
                if state == "sent" and not _listed(tg, chat, in_digest[(alert.id, chat)], alert.asset):
                    problems.append(f"alert {alert.id} {key} to chat {chat}: sent in a digest that omits it")
                elif state not in FINAL or (state == UNKNOWN and not allow_unknown):
                    problems.append(f"alert {alert.id} {key} to chat {chat} ended {state!r}")
            elif state == "sent":
                sent[key] += 1
            elif state == UNKNOWN and allow_unknown:
                unknown[key] += 1
            else:
                problems.append(f"alert {alert.id} {key} to chat {chat} ended {state!r}")
        received = alert_messages(tg, chat)
        for key in sent.keys() | unknown.keys() | received.keys():
            got, low, high = received[key], sent[key], sent[key] + unknown[key]
            if got < low:
                problems.append(f"chat {chat}: {key} {low} row(s) sent, Telegram received {got} (lost)")
            if got > high:
                problems.append(f"chat {chat}: {key} received {got} times, at most {high} allowed (twice)")
    return problems


async def figure_problems(db_url: str, sim: SimControl, multiple: float, min_volume: float) -> list[str]:
    """Alerts whose figures are not real: zero or unknown volume or price, a SPIKE below the rule,
    a FULL_UPDATE whose totals differ from the exchange's closed 1h klines."""
    problems: list[str] = []
    alerts = await alert_rows(db_url)
    spiked = {(a.symbol, a.hour_ms): a.current_volume for a in alerts if a.alert_type == "SPIKE"}
    for a in alerts:
        name = f"{a.alert_type} {a.symbol} hour {a.hour_ms}"
        if not (a.current_volume > 0 and a.previous_volume > 0 and a.price > 0 and a.ratio > 0):
            problems.append(
                f"{name}: figures not real: current {a.current_volume}, previous {a.previous_volume}, "
                f"ratio {a.ratio}, price {a.price}"
            )
            continue
        if a.alert_type == "SPIKE" and (a.ratio < multiple or a.current_volume < min_volume):
            problems.append(f"{name}: SPIKE below the rule (ratio {a.ratio}, current {a.current_volume})")
        if a.alert_type != "SPIKE" and a.current_volume < spiked.get((a.symbol, a.hour_ms), math.inf):
            problems.append(f"{name}: current {a.current_volume} below its SPIKE's, or no SPIKE at all")
        if a.detected_ms < a.hour_ms or a.detected_ms > a.hour_ms + HOUR_MS + 10 * MINUTE_MS:
            problems.append(f"{name}: detected at {a.detected_ms}, outside its hour")
        if a.alert_type == "FULL_UPDATE":
            total = await sim.hour_quote_volume(a.symbol, a.hour_ms)
            previous = await sim.hour_quote_volume(a.symbol, a.hour_ms - HOUR_MS)
            if not math.isclose(a.current_volume, total, rel_tol=1e-6):
                problems.append(f"{name}: current {a.current_volume}, the closed hour's total is {total}")
            if not math.isclose(a.previous_volume, previous, rel_tol=1e-6):
                problems.append(f"{name}: previous {a.previous_volume}, the exchange says {previous}")
        elif a.hour_ms + HOUR_MS <= await sim.now_ms():
            total = await sim.hour_quote_volume(a.symbol, a.hour_ms)
            if a.current_volume > total * (1 + 1e-6):
                problems.append(f"{name}: current {a.current_volume} above the hour's total {total}")
    return problems


async def missing_candles(db_url: str, first_ms: int, last_ms: int) -> dict[str, list[str]]:
    """Followed symbol -> the minutes in [first_ms, last_ms] (opens, UTC) that `candles_1m` lacks."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(MISSING_MINUTES, utc_from_ms(first_ms), utc_from_ms(last_ms))
    finally:
        await conn.close()
    missing: dict[str, list[str]] = {}
    for r in rows:
        missing.setdefault(r["symbol"], []).append(r["minute"].strftime("%H:%M"))
    return missing


MISSING_MINUTES = """
SELECT s.symbol, m.minute
FROM symbols s
CROSS JOIN generate_series($1::timestamptz, $2::timestamptz, interval '1 minute') AS m(minute)
WHERE s.active
  AND NOT EXISTS (SELECT 1 FROM candles_1m c WHERE c.symbol = s.symbol AND c.open_time = m.minute)
ORDER BY s.symbol, m.minute
"""
