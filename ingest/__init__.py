"""Ingest: Binance USDⓈ-M streams in, closed 1m candles and volume-spike alerts out.

The pure core (`parsers`, `detector`) knows nothing of sockets or databases; the edges
(`publisher`, `candles`, `live_state`, `streams`, `service`) move its results into
PostgreSQL and Redis. `replay` runs a recording through the same core.
"""
