"""Configuration of the exchange simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ScheduledSpike:
    """A volume spike that fires by itself once the sim clock reaches its time.

    Give either ``at_ms`` (absolute sim time, ms since the epoch) or ``minute_offset``
    (minutes after the sim start time).
    """

    symbol: str
    multiple: float
    minute_offset: float | None = None
    at_ms: int | None = None
    min_quote_volume: float = 0.0


@dataclass(slots=True)
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port
    symbols: int = 300  # tradeable USDT perpetuals (the filtered-out extras come on top)
    seed: int = 1
    speed: float = 1.0  # sim seconds per real second
    start_time: int | datetime | None = None  # ms since the epoch or an aware datetime; None: now
    update_interval: float = 0.25  # seconds between kline frames
    update_phases: int = 10  # the interval is split in this many slots, each sending a share of the streams
    weight_limit: int = 2400  # REQUEST_WEIGHT per (real) minute
    late_close_probability: float = 0.2  # chance the x:true frame comes after the next minute's first
    late_close_max_delay: float = 1.0  # seconds
    spikes: list[ScheduledSpike] = field(default_factory=list)
    natural_spike_rate: float = 0.002  # chance per (symbol, hour) of an organic volume burst
    special_symbols: bool = True  # quarterly, USDC, SETTLING, TradFi and non-ASCII entries
    ping_interval: float = 180.0  # protocol-level pings, as Binance (every 3 minutes)
    pong_timeout: float = 600.0  # close the connection when no pong comes back in time
    max_streams_per_connection: int = 1024
    max_incoming_per_second: int = 10
    max_queued_frames: int = 200_000  # a client this far behind is disconnected
    ban_after_violations: int = 5  # requests answered 429 in one minute before a 418 ban
    ban_seconds: float = 120.0
    request_log_size: int = 10_000
    # Compute the last 24 hours of every symbol before listening, so the first `ticker/24hr`
    # answers at once instead of computing ~1,440 minutes a symbol while clients arm (at 600
    # symbols about a minute of CPU that slows every other answer of the simulator meanwhile).
    warm_day: bool = False

    @property
    def start_time_ms(self) -> int | None:
        if isinstance(self.start_time, datetime):
            return int(self.start_time.timestamp() * 1000)
        return self.start_time
