-- Early warning (core/pace.py): an EARLY alert says the hour's pace (its volume so far against the
-- symbol's usual curve for this hour of the day) projects at least M× the previous hour while the
-- hour still stands below M×. Its rows are graded like the SPIKE's crossings: the first EARLY of a
-- symbol-hour that projects the service's own multiple is public (level NULL); each later one
-- records a higher preset multiple the projection reached (level set), for users whose own
-- multiple it is. `projected_volume` is the hour's projected total (NULL on every other type).
ALTER TABLE alerts DROP CONSTRAINT alerts_alert_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_alert_type_check
    CHECK (alert_type IN ('SPIKE', 'HALF_UPDATE', 'FULL_UPDATE', 'EARLY'));
ALTER TABLE alerts DROP CONSTRAINT alerts_level_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_level_check CHECK (
    (level_multiple IS NULL) = (level_volume IS NULL)
    AND (level_multiple IS NULL OR alert_type IN ('SPIKE', 'EARLY'))
);
ALTER TABLE alerts ADD COLUMN projected_volume double precision;
ALTER TABLE alerts ADD CONSTRAINT alerts_projected_check
    CHECK ((projected_volume IS NOT NULL AND projected_volume > 0) = (alert_type = 'EARLY'));

-- The track record and the outcomes read a month or three of public EARLYs by time.
CREATE INDEX alerts_early_detected_idx ON alerts (detected_at) WHERE alert_type = 'EARLY';

-- One EARLY per user (and chat) per symbol-hour, whichever row of the hour it is.
ALTER TABLE deliveries
    ADD COLUMN early_symbol text,
    ADD COLUMN early_hour   timestamptz;
CREATE UNIQUE INDEX deliveries_one_early_key ON deliveries (chat_id, early_symbol, early_hour)
    WHERE early_hour IS NOT NULL;

-- The usual intraday curve of a symbol's volume (core/pace.py): for one UTC hour of the day, the
-- share of the hour's quote volume usually done by the end of each minute (60 cumulative shares,
-- the last 1), pooled over the complete hours of the last 30 days in candles_1m. Ingest refreshes
-- it once a day per hour of the day; the detector reads it, never candles, per frame.
CREATE TABLE volume_curves (
    symbol       text             NOT NULL,
    hour_of_day  smallint         NOT NULL CHECK (hour_of_day BETWEEN 0 AND 23),
    shares       double precision[] NOT NULL CHECK (cardinality(shares) = 60),
    days         smallint         NOT NULL,   -- complete hours the curve was pooled from
    computed_at  timestamptz      NOT NULL,
    PRIMARY KEY (symbol, hour_of_day)
);
