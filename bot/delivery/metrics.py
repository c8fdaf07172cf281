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
SEND_SECONDS = Histogram(
    "volspike_send_seconds",
    "Duration of one sendMessage call to Telegram.",
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
