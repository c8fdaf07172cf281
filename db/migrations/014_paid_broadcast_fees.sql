-- What paid broadcasts cost: each Star transaction Telegram bills the bot for messages sent with
-- `allow_paid_broadcast` over the free broadcast limit (getStarTransactions, receiver
-- `telegram_api`), stored once by its transaction id, and how far that ledger has been read.

CREATE TABLE paid_broadcast_fees (
    transaction_id text        PRIMARY KEY,
    request_count  integer     NOT NULL CHECK (request_count >= 0),
    nanostars      bigint      NOT NULL CHECK (nanostars >= 0),  -- 1 Star = 1,000,000,000
    charged_at     timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX paid_broadcast_fees_charged_idx ON paid_broadcast_fees (charged_at);

CREATE TABLE paid_broadcast_cursor (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    next_offset integer     NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO paid_broadcast_cursor DEFAULT VALUES;
