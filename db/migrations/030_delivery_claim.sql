-- The sender's claim reads the due rows through one index in exactly its order (priority, due_at,
-- id), so a claim reads what it takes and nothing more, whatever the size of the table.
-- `claimed_by`: the sender process (its advisory-lock key) that has a `sending` row in flight;
-- only a row whose owner no longer holds its lock is left over from a crash.
CREATE INDEX deliveries_claim_idx ON deliveries (priority, due_at, id) WHERE status = 'pending';
DROP INDEX deliveries_due_idx;

ALTER TABLE deliveries ADD COLUMN claimed_by integer;
