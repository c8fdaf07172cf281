-- Optional per-user daily cap (core/daily_cap.py, bot/delivery/daily_cap.py). `daily_cap`: at most
-- this many SPIKE messages a local day (the user's `timezone`); NULL, the default, is no cap.
-- A SPIKE row held back by the cap ends `sent` with `capped` set and the message_id of the day's
-- summary message it was listed in (sent new, or edited to add it); an update never edits a
-- capped row's message (it is the summary, not the spike's).
ALTER TABLE user_settings ADD COLUMN daily_cap smallint
    CHECK (daily_cap IS NULL OR daily_cap BETWEEN 1 AND 1000);
ALTER TABLE deliveries ADD COLUMN capped boolean NOT NULL DEFAULT false;

-- The chat's SPIKE rows still unsettled (`sent_at` NULL: pending or in flight) and those sent on
-- a day (by `sent_at`): the cap's count and the per-chat serialisation of capped users' SPIKEs
-- read only these few rows of the chat.
CREATE INDEX deliveries_spike_day_idx ON deliveries (chat_id, sent_at)
    WHERE spike_hour IS NOT NULL AND status IN ('pending', 'sending', 'sent');
