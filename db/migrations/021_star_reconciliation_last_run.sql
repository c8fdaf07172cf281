-- When the daily Stars reconciliation last completed (the job's clock), so a bot that was down at
-- its hour catches up at start. An existing row's last cursor write is its last run.
ALTER TABLE star_reconciliation ADD COLUMN last_run_at timestamptz;
UPDATE star_reconciliation SET last_run_at = updated_at;
ALTER TABLE star_reconciliation ALTER COLUMN last_run_at SET DEFAULT now(), ALTER COLUMN last_run_at SET NOT NULL;
