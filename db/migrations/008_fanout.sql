-- Fan-out bookkeeping in PostgreSQL, the source of truth: an alert is fanned out (its delivery rows
-- written) exactly when `fanned_out_at` is set, in the same transaction as its last delivery rows.
-- A worker that starts, or finds Redis empty, fans out every alert that has neither
-- `fanned_out_at` nor `fanout_failed_at` (the dead-letter state: too many failed attempts, or too
-- old to be sent to anyone), so a lost stream entry never loses an alert.
ALTER TABLE alerts
    ADD COLUMN fanned_out_at    timestamptz,
    ADD COLUMN fanout_attempts  integer NOT NULL DEFAULT 0,
    ADD COLUMN fanout_error     text,
    ADD COLUMN fanout_failed_at timestamptz;

-- Alerts that existed before this migration were handled by the stream worker: those with
-- delivery rows, and any older than ALERT_MAX_AGE's default (30 min), count as fanned out.
-- Younger ones without rows are offered again (deliveries are unique per chat: nothing twice).
UPDATE alerts a SET fanned_out_at = coalesce(a.published_at, a.created_at)
WHERE a.created_at < now() - interval '30 minutes'
   OR EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id);

CREATE INDEX alerts_fanout_due_idx ON alerts (id) WHERE fanned_out_at IS NULL AND fanout_failed_at IS NULL;
