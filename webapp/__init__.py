"""The Mini App, its JSON API, the UDF datafeed, webhooks, /health and /metrics."""
