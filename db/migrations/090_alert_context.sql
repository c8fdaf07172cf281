-- An alert's context (core/alert_context.py): the figures around it when it fired, stored with
-- it as one jsonb object of camelCase fields, unknown ones null. NULL for alerts stored before
-- alerts had a context. The open-interest figure is merged in after the alert is published.
ALTER TABLE alerts ADD COLUMN context jsonb;

-- The context's one query per alert reads, for one symbol: candles_1h by (symbol, open_time)
-- and candles_1m by (symbol, open_time) (their primary keys), and mark_snapshots of the last
-- 30 days by (symbol, ts) (its primary key). No further index is needed.
