-- The whole product's first schema. Later migrations fill it rather than reshape it.

CREATE TABLE users (
    id              bigint PRIMARY KEY,                 -- Telegram user id
    username        text,
    first_name      text,
    language        text        NOT NULL DEFAULT 'en',
    tier            text        NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro', 'elite')),
    tier_expires_at timestamptz,                        -- NULL: no expiry (free, or granted forever)
    banned          boolean     NOT NULL DEFAULT false,
    blocked         boolean     NOT NULL DEFAULT false, -- the user blocked the bot (403)
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_tier_idx ON users (tier) WHERE NOT banned AND NOT blocked;

CREATE TABLE user_settings (
    user_id          bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    spike_multiple   double precision CHECK (spike_multiple IS NULL OR spike_multiple > 1),
    min_quote_volume double precision CHECK (min_quote_volume IS NULL OR min_quote_volume >= 0),
    alert_types      text[]      NOT NULL DEFAULT '{SPIKE,HALF_UPDATE,FULL_UPDATE}',
    watchlist_only   boolean     NOT NULL DEFAULT false,
    quiet_start      time,                              -- local time in `timezone`; NULL: no quiet hours
    quiet_end        time,
    timezone         text        NOT NULL DEFAULT 'UTC',
    paused           boolean     NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE watchlists (
    user_id  bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    symbol   text        NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, symbol)
);
CREATE INDEX watchlists_symbol_idx ON watchlists (symbol);

CREATE TABLE mutes (
    user_id bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    symbol  text        NOT NULL,
    until   timestamptz NOT NULL,
    PRIMARY KEY (user_id, symbol)
);

-- Groups and channels an admin connected; they receive SPIKE alerts as `tier` would.
CREATE TABLE chats (
    id           bigint PRIMARY KEY,                    -- Telegram chat id (negative for groups)
    kind         text        NOT NULL CHECK (kind IN ('group', 'supergroup', 'channel')),
    title        text,
    tier         text        NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro', 'elite')),
    connected_by bigint      NOT NULL,
    active       boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The exchange universe as ingest last saw it.
CREATE TABLE symbols (
    symbol        text PRIMARY KEY,
    base_asset    text        NOT NULL,
    quote_asset   text        NOT NULL,
    contract_type text        NOT NULL,
    status        text        NOT NULL,
    active        boolean     NOT NULL DEFAULT true,
    onboard_date  timestamptz,
    delivery_date timestamptz,
    price_precision integer,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    symbol          text             NOT NULL,
    asset           text             NOT NULL,
    alert_type      text             NOT NULL CHECK (alert_type IN ('SPIKE', 'HALF_UPDATE', 'FULL_UPDATE')),
    hour_ts         timestamptz      NOT NULL,          -- start of the hour the alert belongs to
    detected_at     timestamptz      NOT NULL,          -- exchange event time that triggered it
    current_volume  double precision NOT NULL,
    previous_volume double precision NOT NULL,
    volume_ratio    double precision NOT NULL,
    price           double precision NOT NULL,
    funding_rate    double precision,
    published_at    timestamptz,                        -- NULL until it is in the Redis stream
    created_at      timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (symbol, hour_ts, alert_type)
);
CREATE INDEX alerts_detected_idx ON alerts (detected_at DESC);
CREATE INDEX alerts_symbol_detected_idx ON alerts (symbol, detected_at DESC);
CREATE INDEX alerts_unpublished_idx ON alerts (id) WHERE published_at IS NULL;

-- One row per (alert, recipient chat). For a private chat chat_id is the user id.
CREATE TABLE deliveries (
    id          bigserial PRIMARY KEY,
    alert_id    bigint      NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    chat_id     bigint      NOT NULL,
    priority    smallint    NOT NULL DEFAULT 2,         -- 0 elite, 1 pro, 2 free: lower is sent first
    status      text        NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'blocked', 'lost')),
    attempts    integer     NOT NULL DEFAULT 0,
    due_at      timestamptz NOT NULL,
    sent_at     timestamptz,
    message_id  bigint,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (alert_id, chat_id)
);
CREATE INDEX deliveries_due_idx ON deliveries (priority, due_at) WHERE status = 'pending';
CREATE INDEX deliveries_sending_idx ON deliveries (updated_at) WHERE status = 'sending';
CREATE INDEX deliveries_chat_idx ON deliveries (chat_id, created_at DESC);

CREATE TABLE payments (
    id                 bigserial PRIMARY KEY,
    user_id            bigint      NOT NULL REFERENCES users (id),
    provider           text        NOT NULL CHECK (provider IN ('stars', 'stripe', 'admin')),
    provider_charge_id text        NOT NULL,
    amount             bigint      NOT NULL,            -- minor units (cents) or Stars
    currency           text        NOT NULL,            -- 'XTR' for Stars
    tier               text        NOT NULL CHECK (tier IN ('pro', 'elite')),
    period_days        integer     NOT NULL CHECK (period_days > 0),
    status             text        NOT NULL DEFAULT 'paid' CHECK (status IN ('paid', 'refunded')),
    refunded_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_charge_id)
);
CREATE INDEX payments_user_idx ON payments (user_id, created_at DESC);

CREATE TABLE webhook_events (
    provider    text        NOT NULL,
    event_id    text        NOT NULL,
    event_type  text,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

CREATE TABLE admin_audit (
    id         bigserial PRIMARY KEY,
    admin_id   bigint      NOT NULL,
    action     text        NOT NULL,
    target     text,
    details    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE broadcasts (
    id           bigserial PRIMARY KEY,
    admin_id     bigint      NOT NULL,
    text         text,                                   -- plain text, or NULL when copying a message
    from_chat_id bigint,                                 -- copyMessage source
    message_id   bigint,
    status       text        NOT NULL DEFAULT 'draft'
                 CHECK (status IN ('draft', 'running', 'cancelled', 'done')),
    progress_chat_id    bigint,                          -- where the progress message lives
    progress_message_id bigint,
    total        integer     NOT NULL DEFAULT 0,
    sent         integer     NOT NULL DEFAULT 0,
    blocked      integer     NOT NULL DEFAULT 0,
    failed       integer     NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

CREATE TABLE broadcast_recipients (
    broadcast_id bigint NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    user_id      bigint NOT NULL,
    status       text   NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sending', 'sent', 'blocked', 'failed', 'lost')),
    PRIMARY KEY (broadcast_id, user_id)
);
CREATE INDEX broadcast_recipients_pending_idx ON broadcast_recipients (broadcast_id) WHERE status = 'pending';

-- Closed 1-minute candles, range-partitioned by day on open_time.
CREATE TABLE candles_1m (
    symbol           text             NOT NULL,
    open_time        timestamptz      NOT NULL,
    open             double precision NOT NULL,
    high             double precision NOT NULL,
    low              double precision NOT NULL,
    close            double precision NOT NULL,
    volume           double precision NOT NULL,   -- base asset
    quote_volume     double precision NOT NULL,   -- kline `q`
    trades           integer          NOT NULL,
    taker_buy_volume double precision NOT NULL,
    taker_buy_quote  double precision NOT NULL,
    PRIMARY KEY (symbol, open_time)
) PARTITION BY RANGE (open_time);

-- Creates the daily partitions covering [first_day, last_day]; safe to call again.
CREATE FUNCTION ensure_candle_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date := first_day;
    created integer := 0;
    part text;
BEGIN
    WHILE day <= last_day LOOP
        part := 'candles_1m_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS %I PARTITION OF candles_1m FOR VALUES FROM (%L) TO (%L)',
                part, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN created;
END $$;

-- Drops daily partitions that end on or before `cutoff`; returns how many it dropped.
CREATE FUNCTION drop_candle_partitions_before(cutoff date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    rec record;
    dropped integer := 0;
BEGIN
    FOR rec IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'candles_1m' AND c.relname ~ '^candles_1m_[0-9]{8}$'
    LOOP
        IF to_date(substr(rec.relname, 12), 'YYYYMMDD') < cutoff THEN
            EXECUTE format('DROP TABLE %I', rec.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;

-- Mark price and funding, sampled once a minute per symbol.
CREATE TABLE mark_snapshots (
    symbol            text             NOT NULL,
    ts                timestamptz      NOT NULL,
    mark_price        double precision NOT NULL,
    index_price       double precision,
    funding_rate      double precision,
    next_funding_time timestamptz,
    PRIMARY KEY (symbol, ts)
);
CREATE INDEX mark_snapshots_ts_idx ON mark_snapshots (ts);
