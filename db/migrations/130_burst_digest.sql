-- Burst digest (bot/delivery/digest.py, core/digest.py): when a chat's SPIKEs come in a burst (at
-- least DIGEST_MIN_SYMBOLS within a minute), the rows of the burst after the first N-1 go out as
-- ONE message listing them, sent by the first and edited by each later one. Such a row is `sent`
-- with the digest's message id and `digest_since` set: the start of the window the digest lists
-- (the chat's SPIKEs detected from then on); NULL on every other row.
ALTER TABLE deliveries ADD COLUMN digest_since timestamptz;

-- A chat's SPIKE rows by symbol-hour: the claim counts the chat's SPIKEs of the last minute (their
-- hour or the one before) through it, and the digest lists them.
CREATE INDEX deliveries_chat_spikes_idx ON deliveries (chat_id, spike_hour) WHERE spike_hour IS NOT NULL;
