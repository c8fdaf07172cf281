-- The feed, the chart markers and a symbol's latest alerts read public alerts only
-- (`level_multiple IS NULL`: crossings of own thresholds are their users' pushes): these
-- indexes match that predicate, so the planner reads a symbol's or the feed's newest alerts
-- by time instead of every hour of the symbol through the public unique key.
CREATE INDEX alerts_public_detected_idx ON alerts (detected_at DESC) WHERE level_multiple IS NULL;
CREATE INDEX alerts_public_symbol_detected_idx ON alerts (symbol, detected_at DESC) WHERE level_multiple IS NULL;
