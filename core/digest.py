"""The burst digest: when a chat's SPIKEs come in a burst, one message lists them instead of one
message each.

The rule. A chat's SPIKE (the public one or a crossing of its own thresholds; never an early
warning or an update) is *in a burst* when the chat already has at least `min_symbols - 1` other
SPIKEs (sent, in flight or due) detected within `WINDOW` before it, or when the chat's digest
already holds a SPIKE detected within `WINDOW` before it (a burst goes on while each new SPIKE
comes within a minute of the previous one). `min_symbols` 0 turns the digest off. Nothing waits
for a burst: the first `min_symbols - 1` SPIKEs of a burst went out as messages of their own when
they came; the first SPIKE in the burst sends the digest, every later one edits it to add itself.

The digest lists every SPIKE of the burst (from `WINDOW` before the digest's first one), the most
unusual first: by rank (the hour's volume among the same hour of the last 30 days, `top X%`, when
it is known), then by ratio; `MAX_LISTED` at most, then how many more.

Pure: the figures in, the lines (plain text, in the reader's language) out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.alert_context import format_top
from core.alerts import format_ratio, format_usd, simulated_prefix

WINDOW = timedelta(seconds=60)  # db.deliveries.CLAIM_DUE's "interval '60 seconds'" is this
MAX_LISTED = 20  # a digest of more SPIKEs lists these and says how many more


@dataclass(frozen=True, slots=True)
class BurstSpike:
    """One SPIKE of a burst, as the digest lists it."""

    symbol: str
    asset: str
    ratio: float
    volume: float
    detected_at: datetime
    rank_top_percent: float | None = None
    simulated: bool = False


def in_burst(*, peers: int, chained: bool, min_symbols: int) -> bool:
    """Whether a SPIKE goes into the chat's digest: `peers` other SPIKEs of the chat within
    `WINDOW` before it, `chained`: the chat's digest holds one of them."""
    if min_symbols <= 0:
        return False
    return chained or peers >= min_symbols - 1


def ordered(spikes: Sequence[BurstSpike]) -> list[BurstSpike]:
    """The most unusual first: a known rank before none, a higher one (smaller top %) first, then
    the higher ratio; the symbol last, so the order is the same every time."""
    return sorted(
        spikes,
        key=lambda s: (
            s.rank_top_percent is None,
            s.rank_top_percent if s.rank_top_percent is not None else 0.0,
            -s.ratio,
            s.symbol,
        ),
    )


def digest_lines(
    spikes: Sequence[BurstSpike],
    t: Callable[[str], str],
    ngettext: Callable[[str, str, int], str],
) -> list[str]:
    """The digest's lines in the reader's language: the headline with the count, then one line per
    SPIKE (most unusual first), then how many more when there are over `MAX_LISTED`."""
    listed = ordered(spikes)
    count = len(listed)
    headline = ngettext(
        "{count} symbol spiked within a minute", "{count} symbols spiked within a minute", count
    ).format(count=count)
    lines = [simulated_prefix(any(s.simulated for s in listed)) + headline]
    for spike in listed[:MAX_LISTED]:
        rank = (
            t("rank n/a")
            if spike.rank_top_percent is None
            else t("top {percent}").format(percent=format_top(spike.rank_top_percent))
        )
        lines.append(
            t("{asset} {ratio} prev · hourly volume {volume} · {rank}").format(
                asset=spike.asset, ratio=format_ratio(spike.ratio), volume=format_usd(spike.volume), rank=rank
            )
        )
    more = count - MAX_LISTED
    if more > 0:
        lines.append(t("… and {more} more").format(more=more))
    return lines
