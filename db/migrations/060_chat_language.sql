-- Connected groups and channels: the language their alerts are written in (chosen by the admin
-- with `/connect ... <lang>`), and whether the admin was told that Telegram refused a delivery
-- (403: the bot was removed) and the chat was deactivated. Chats deactivated before this are
-- counted as told.
ALTER TABLE chats
    ADD COLUMN language text NOT NULL DEFAULT 'en',
    ADD COLUMN deactivated_at timestamptz,
    ADD COLUMN deactivation_told boolean NOT NULL DEFAULT true;
