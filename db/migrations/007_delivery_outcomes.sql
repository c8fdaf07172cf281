-- Delivery outcomes: `unknown` (Telegram may or may not have the message: a timeout or a reset
-- after the request was written, a 5xx, or a crash while the request was open; never re-sent) and
-- `expired` (the alert was older than ALERT_MAX_AGE when it would have been sent; not sent).
-- `lost` was the earlier name of a crash's `unknown`: the rows keep their meaning under one name.

ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
UPDATE deliveries SET status = 'unknown' WHERE status = 'lost';
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'blocked', 'skipped', 'unknown', 'expired'));
