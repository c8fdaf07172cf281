-- Telegram Stars payments and the tier lifecycle: what a payment changed (so a refund can undo it),
-- the renewing subscriptions, the history of every tier change, the expiry reminders already sent
-- and the reconciliation cursor over getStarTransactions.

ALTER TABLE payments
    ADD COLUMN kind            text CHECK (kind IN ('pass', 'subscription')),
    ADD COLUMN invoice_payload text,
    ADD COLUMN is_recurring    boolean     NOT NULL DEFAULT false,
    ADD COLUMN source          text        NOT NULL DEFAULT 'update'
                               CHECK (source IN ('update', 'reconciliation', 'webhook')),
    ADD COLUMN tier_before     text CHECK (tier_before IN ('free', 'pro', 'elite')),
    ADD COLUMN expires_before  timestamptz,
    ADD COLUMN tier_after      text CHECK (tier_after IN ('free', 'pro', 'elite')),
    ADD COLUMN expires_after   timestamptz;

-- One renewing subscription per user and provider. `external_id` is what the provider needs to
-- change it: for Stars the telegram_payment_charge_id given to editUserStarSubscription.
CREATE TABLE subscriptions (
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider    text        NOT NULL CHECK (provider IN ('stars', 'stripe')),
    external_id text        NOT NULL,
    tier        text        NOT NULL CHECK (tier IN ('pro', 'elite')),
    period_end  timestamptz NOT NULL,
    renews      boolean     NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);

CREATE TABLE tier_history (
    id             bigserial PRIMARY KEY,
    user_id        bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tier_before    text        NOT NULL,
    expires_before timestamptz,
    tier_after     text        NOT NULL,
    expires_after  timestamptz,
    cause          text        NOT NULL CHECK (cause IN (
                       'stars_payment', 'stripe_payment', 'refund', 'admin_grant', 'admin_revoke', 'expiry')),
    payment_id     bigint REFERENCES payments (id),
    admin_id       bigint,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tier_history_user_idx ON tier_history (user_id, id DESC);

-- A reminder is sent once per (user, expiry moment, days before).
CREATE TABLE expiry_reminders (
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    days_before integer     NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, expires_at, days_before)
);

-- How far the daily reconciliation has read the bot's Star transactions (chronological order).
CREATE TABLE star_reconciliation (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    next_offset integer     NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO star_reconciliation DEFAULT VALUES;
