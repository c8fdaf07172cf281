-- Updates edit the chat's message of the symbol-hour (bot/delivery/sender.py): a HALF or FULL
-- update is sent with editMessageText into the message the chat already has for that symbol-hour,
-- and its row keeps that message's id in `message_id` with `edited` set. A row sent as a new
-- message (the edit was refused, or there was no message to edit) has `edited` false.
-- The message to edit is found through the hour's alerts (alerts_public_key / alerts_crossing_key
-- by symbol and hour) and the chat's row of each (deliveries' UNIQUE (alert_id, chat_id)).
ALTER TABLE deliveries ADD COLUMN edited boolean NOT NULL DEFAULT false;
