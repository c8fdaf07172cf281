"""The optional per-user daily cap: at most `cap` SPIKE messages a local day, then one summary.

Counted: the user's SPIKE messages (the public SPIKE or a crossing of their own thresholds; not
updates, not early warnings) sent since midnight in the user's time zone. When `cap` of them went
out today, a further SPIKE is held back: no alert message; the first held-back SPIKE of the day
sends one summary message and each later one edits that summary to add itself (a new summary when
Telegram refuses the edit). Pure: the claim (db.deliveries.CLAIM_DUE) counts the day (midnight in
the user's zone, by PostgreSQL's time zone data), the sender (bot.delivery.daily_cap) makes the call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.number_format import format_ratio

DAILY_CAP_PRESETS = (5, 10, 20, 50)
SHOWN = 40  # held-back alerts listed by name in the summary; the rest are counted


def valid_cap(value: int | None) -> bool:
    """None (no cap) or one of the presets."""
    return value is None or value in DAILY_CAP_PRESETS


@dataclass(frozen=True, slots=True)
class CapDay:
    """A capped user's day so far, as the claim saw it for one of their SPIKE rows."""

    cap: int
    sent: int  # SPIKE messages sent today (held-back rows not counted)
    held: tuple[tuple[str, float], ...] = ()  # today's held-back SPIKEs (asset, ratio), first SHOWN
    held_count: int = 0  # all of today's held-back SPIKEs
    summary_message_id: int | None = None  # the latest summary of today, to edit

    def holds_back(self) -> bool:
        return self.sent >= self.cap


def summary_text(cap: int, held: Sequence[tuple[str, float]], count: int, t: Callable[[str], str]) -> str:
    """The summary, plain text: the cap, today's held-back alerts (the first SHOWN, then "…") and
    how to change the cap."""
    shown = ", ".join(f"{asset} {format_ratio(ratio)}" for asset, ratio in held[:SHOWN])
    if count > min(len(held), SHOWN):
        shown += " …"
    return "\n".join(
        (
            t("Daily cap of {cap} alerts reached.").format(cap=cap),
            t("Held back today: {alerts} ({count})").format(alerts=shown, count=count),
            t("Change or remove the cap in /settings."),
        )
    )
