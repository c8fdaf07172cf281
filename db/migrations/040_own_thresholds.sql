-- Own thresholds (core/presets.py). After an hour's public SPIKE, ingest records each
-- *crossing*: the moment the hour first stood at a higher preset multiple or minimum volume, with
-- the figures of that moment and the grade it reached (`level_multiple`, `level_volume`; NULL on
-- every public alert). A crossing is a SPIKE row only the users whose thresholds it is the first
-- to satisfy receive; it is never in the public feed. Unique per symbol, hour, type and grade.
ALTER TABLE alerts
    ADD COLUMN level_multiple double precision,
    ADD COLUMN level_volume   double precision,
    ADD CONSTRAINT alerts_level_check CHECK (
        (level_multiple IS NULL) = (level_volume IS NULL)
        AND (level_multiple IS NULL OR alert_type = 'SPIKE')
    );

-- The crossings' key is not partial (public rows, NULL grades, never collide in it): it is also the
-- index of every lookup of an hour's rows by (symbol, hour, type).
ALTER TABLE alerts DROP CONSTRAINT alerts_symbol_hour_ts_alert_type_key;
CREATE UNIQUE INDEX alerts_public_key ON alerts (symbol, hour_ts, alert_type) WHERE level_multiple IS NULL;
CREATE UNIQUE INDEX alerts_crossing_key ON alerts (symbol, hour_ts, alert_type, level_multiple, level_volume);

-- One SPIKE per user (and chat) per symbol-hour, whichever row of the hour it is and however
-- often the user changes their thresholds: SPIKE deliveries carry their symbol-hour, unique per chat.
ALTER TABLE deliveries
    ADD COLUMN spike_symbol text,
    ADD COLUMN spike_hour   timestamptz;

UPDATE deliveries d SET spike_symbol = a.symbol, spike_hour = a.hour_ts
FROM alerts a
WHERE a.id = d.alert_id AND a.alert_type = 'SPIKE' AND a.hour_ts >= now() - interval '2 hours';

CREATE UNIQUE INDEX deliveries_one_spike_key ON deliveries (chat_id, spike_symbol, spike_hour)
    WHERE spike_hour IS NOT NULL;
