"""Prometheus metrics of the delivery path (process-wide, in prometheus_client's default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "volspike_deliveries_total",
    "Alert deliveries by outcome: sent, blocked, failed, skipped, expired, unknown (Telegram may or"
    " may not have it; never re-sent), retried, rate_limited, migrated, returned (given back to"
    " pending, not attempted: a clean shutdown, a stopped sender, a chat still rate limited).",
    ["outcome"],
)
UPDATE_EDITS = Counter(
    "volspike_update_edits_total",
    "Updates sent by editing the chat's message of the symbol-hour: edited (not_modified: it already"
    " read so), or refused by Telegram (the message gone or no longer editable: sent as a new message).",
    ["result"],
)
DAILY_CAP_HELD = Counter(
    "volspike_daily_cap_held_total",
    "SPIKEs held back by a user's daily cap: listed in a new summary message, or by editing the"
    " day's summary.",
    ["summary"],
)
SEND_SECONDS = Histogram(
    "volspike_send_seconds",
    "Duration of one delivery's calls to Telegram (sendMessage, or editMessageText and its fallback).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SENDER_STOPPED = Gauge(
    "volspike_sender_stopped",
    "1 while the sender is stopped because Telegram rejected the bot token (401/404); rows stay pending.",
)
QUEUE_DEPTH = Gauge("volspike_delivery_queue_depth", "Deliveries due and waiting for the sender.")
OLDEST_PENDING_AGE = Gauge(
    "volspike_delivery_oldest_pending_age_seconds", "How long the oldest due delivery has waited (0: none)."
)
ALERTS_FANNED_OUT = Counter(
    "volspike_alerts_fanned_out_total", "Alert stream entries turned into delivery rows."
)
BROADCAST_MESSAGES = Counter(
    "volspike_broadcast_messages_total", "Broadcast messages by outcome.", ["outcome"]
)
PAID_BROADCAST_MESSAGES = Counter(
    "volspike_paid_broadcast_messages_total",
    "Messages sent with allow_paid_broadcast that Telegram billed (over its free broadcast limit),"
    " as its Star ledger reports them.",
)
PAID_BROADCAST_STARS = Counter(
    "volspike_paid_broadcast_stars_total",
    "Telegram Stars Telegram charged for paid broadcasts (0.1 per billed message), from its Star ledger.",
)
DIGESTS = Counter(
    "volspike_burst_digests_total",
    "SPIKEs that went out in a chat's burst digest: sent (a new digest), edited (into the chat's"
    " digest), refused (Telegram refused that edit: a new digest was sent).",
    ["result"],
)
