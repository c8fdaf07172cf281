"""Prometheus metrics of the delivery path (process-wide, in prometheus_client's default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "volspike_deliveries_total",
    "Alert deliveries by outcome: sent, blocked, failed, retried, rate_limited, skipped, lost.",
    ["outcome"],
)
SEND_SECONDS = Histogram(
    "volspike_send_seconds",
    "Duration of one sendMessage call to Telegram.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
QUEUE_DEPTH = Gauge("volspike_delivery_queue_depth", "Deliveries due and waiting for the sender.")
ALERTS_FANNED_OUT = Counter(
    "volspike_alerts_fanned_out_total", "Alert stream entries turned into delivery rows."
)
BROADCAST_MESSAGES = Counter(
    "volspike_broadcast_messages_total", "Broadcast messages by outcome.", ["outcome"]
)
