-- Stripe: which Stripe customer is which Telegram user (for the customer portal and for events that
-- name only the customer), and the moment of the latest subscription state applied, so an older
-- `customer.subscription.*` event arriving after a newer one changes nothing.

CREATE TABLE stripe_customers (
    user_id     bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    customer_id text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE subscriptions ADD COLUMN state_at timestamptz;
