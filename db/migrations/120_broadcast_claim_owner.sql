-- `claimed_by`: the broadcast runner (its owner-lock key, db.owner_locks) that has a `sending`
-- recipient row in flight; at start a runner marks `lost` only the rows whose owner no longer
-- holds its lock, never those a living sibling is sending right now.
ALTER TABLE broadcast_recipients ADD COLUMN claimed_by integer;
