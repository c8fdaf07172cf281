"""Prometheus metrics of the ingest service (default registry, served by webapp `/metrics`
and, when INGEST_METRICS_PORT is set, by ingest itself).

Registered once at import, as prometheus_client intends. Alert, candle-write and publish
counters live beside the code that counts them (`db.publisher`, `ingest.candles`).
Per-connection series are labelled by the connection id (`c0`, `c1`, ...), a small set.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

# the ingest service's own port (INGEST_METRICS_PORT)
from db.metrics_server import start_metrics_server as start_metrics_server

CONNECTION_STATES = {"closed": 0, "connecting": 1, "open": 2}

WS_STATE = Gauge(
    "volspike_ingest_ws_state", "Websocket connection state (0 closed, 1 connecting, 2 open)", ["conn"]
)
WS_STREAMS = Gauge("volspike_ingest_ws_streams", "Streams subscribed on a websocket connection", ["conn"])
WS_MESSAGES = Counter("volspike_ingest_ws_messages", "Websocket messages received", ["conn"])
WS_MALFORMED = Counter("volspike_ingest_ws_malformed", "Websocket messages that failed to parse", ["conn"])
WS_RECONNECTS = Counter("volspike_ingest_ws_reconnects", "Websocket reconnections", ["conn", "reason"])
WS_SUBSCRIPTION_REPAIRS = Counter(
    "volspike_ingest_ws_subscription_repairs",
    "Streams found missing (or unexpected) on a connection by LIST_SUBSCRIPTIONS, then repaired",
    ["conn", "kind"],
)
WS_EVENT_LAG = Gauge(
    "volspike_ingest_ws_event_lag_seconds",
    "Receive time minus exchange event time of the last frame",
    ["conn"],
)
WS_LAST_MESSAGE_AGE = Gauge(
    "volspike_ingest_ws_last_message_age_seconds", "Seconds since the last message on a connection", ["conn"]
)
BACKFILLED_CANDLES = Counter(
    "volspike_ingest_backfilled_candles", "Closed 1m candles fetched over REST to fill gaps and history"
)
DETECTION_LATENCY = Histogram(
    "volspike_ingest_detection_latency_seconds",
    "From receiving the frame that triggers an alert to its row committed and published",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
REST_REQUESTS = Counter("volspike_ingest_rest_requests", "Binance REST requests answered", ["path", "status"])
REST_WEIGHT_USED = Gauge("volspike_ingest_rest_weight_used", "Request weight used in the current minute")
SYMBOLS = Gauge("volspike_ingest_symbols", "Symbols followed")
ALERT_QUEUE = Gauge("volspike_ingest_alert_queue", "Alerts detected and not yet saved to PostgreSQL")
WITHOUT_DENOMINATOR = Gauge(
    "volspike_ingest_symbols_without_denominator",
    "Symbols that cannot SPIKE: their previous closed hour is not complete (minutes or 1h kline missing)",
)
ALERTS_HELD_BACK = Counter(
    "volspike_ingest_alerts_held_back",
    "Alerts due but not emitted because a figure was not known (reason: figures_unknown, "
    "half_not_loaded, full_incomplete)",
    ["type", "reason"],
)
HOUR_TOTALS = Counter(
    "volspike_ingest_hour_totals",
    "Closed 1h klines fetched over REST for hours with missing minutes (result: ok, missing, failed)",
    ["result"],
)


def record_rest(path: str, status: int, weight: int) -> None:
    REST_REQUESTS.labels(path, str(status)).inc()


def forget_connection(conn: str) -> None:
    """Drop the series of a connection that no longer exists."""
    for metric in (WS_STATE, WS_STREAMS, WS_EVENT_LAG, WS_LAST_MESSAGE_AGE, WS_MESSAGES, WS_MALFORMED):
        with contextlib.suppress(KeyError):
            metric.remove(conn)
    for kind in ("missing", "unexpected"):
        with contextlib.suppress(KeyError):
            WS_SUBSCRIPTION_REPAIRS.remove(conn, kind)
