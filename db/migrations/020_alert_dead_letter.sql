-- An alert row the publisher cannot publish (figures or times that break the alert rule,
-- `volspike.alert_figures`) is set aside with its reason instead of stopping every alert after it.
ALTER TABLE alerts
    ADD COLUMN publish_failed_at timestamptz,
    ADD COLUMN publish_error     text;

DROP INDEX alerts_unpublished_idx;
CREATE INDEX alerts_unpublished_idx ON alerts (id) WHERE published_at IS NULL AND publish_failed_at IS NULL;
