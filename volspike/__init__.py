"""VolSpike: volume-spike alerts for Binance USDⓈ-M perpetuals on Telegram.

This package holds what the services share: settings, tiers, the alert model and
its formatting, Redis names, logging, the clock, and the command line.
"""

__version__ = "0.1.0"
