-- When the user first wrote to the bot in private: until then the bot may not message them, and the
-- Mini App asks for write access (requestWriteAccess). Users created before the Mini App existed all
-- came through the bot.
ALTER TABLE users ADD COLUMN bot_started_at timestamptz;
UPDATE users SET bot_started_at = created_at;
