-- What the price did after each SPIKE (ingest.outcomes, core.outcomes): one row per alert,
-- filled in as each horizon (+15 min, +1 h, +4 h) passes. `horizon_minutes` is the longest
-- horizon computed so far; a figure of a computed horizon that is NULL is unknown (candles
-- were missing), never zero. Percentages: 1.5 is +1.5 %.
CREATE TABLE alert_outcomes (
    alert_id         bigint PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    horizon_minutes  smallint         NOT NULL CHECK (horizon_minutes IN (15, 60, 240)),
    taker_share      double precision,                 -- taker-buy share of the hour's quote volume, 0..1
    direction        smallint CHECK (direction IN (-1, 1)),
    direction_source text     CHECK (direction_source IN ('taker', 'price')),
    change_15m       double precision,
    change_1h        double precision,
    change_4h        double precision,
    btc_change_15m   double precision,                 -- BTC's move over the same window
    btc_change_1h    double precision,
    btc_change_4h    double precision,
    mfe              double precision,                 -- within 4 h, in `direction`
    mae              double precision,
    rel_mfe          double precision,                 -- the same with BTC's move subtracted
    rel_mae          double precision,
    computed_at      timestamptz      NOT NULL DEFAULT now()
);

-- The track record reads a month or three of SPIKEs by time.
CREATE INDEX alerts_spike_detected_idx ON alerts (detected_at) WHERE alert_type = 'SPIKE';
