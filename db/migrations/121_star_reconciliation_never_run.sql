-- A fresh install has never reconciled its Stars: `last_run_at` NULL (not the time of the
-- migration), so the bot catches up at its first start instead of waiting for the first 03:17 UTC
-- run. An install whose reconciliation never read a transaction is treated alike (one harmless
-- extra run at its next start).
ALTER TABLE star_reconciliation ALTER COLUMN last_run_at DROP NOT NULL, ALTER COLUMN last_run_at DROP DEFAULT;
UPDATE star_reconciliation SET last_run_at = NULL WHERE next_offset = 0;
