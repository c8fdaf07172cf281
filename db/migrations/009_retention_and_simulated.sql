-- Bounded growth and simulated alerts.

-- The retention job deletes deliveries older than DELIVERY_RETENTION_DAYS in batches, oldest
-- first; this index finds them without a scan of the whole table.
CREATE INDEX deliveries_created_idx ON deliveries (created_at);

-- An alert detected on the built-in exchange simulator (USE_SIMULATOR) says so in its text.
ALTER TABLE alerts ADD COLUMN simulated boolean NOT NULL DEFAULT false;
