-- Hourly candles rolled up from candles_1m, so a 1h/4h/1d chart reads ~500 rows instead of
-- aggregating 30,000 minutes. A statement trigger keeps them exact for every writer (the
-- candle writer's COPY and upsert, a late correction, a test's INSERT): the hours a statement
-- touched are recomputed from their minutes in the same transaction, the forming hour included.

-- The one rule turning finer candles into coarser ones, used by the roll-up below and by
-- every read of 5m/15m (from candles_1m) and 1h/4h/1d (from candles_1h): open = first,
-- close = last, high = max, low = min, volumes and trades summed; buckets of `step` from a
-- UTC midnight (so 4h and 1d start at 00:00 UTC like Binance's). For each i, the rows of
-- `source` of symbols[i] with starts[i] <= open_time < stops[i]; a bucket has only the rows
-- stored so far (a gap is no row, a forming bucket covers what has arrived). The first open
-- and the last close are the least and greatest (open time, price) pairs: no sort per bucket.
CREATE FUNCTION candle_bins(
    source regclass, step interval, symbols text[], starts timestamptz[], stops timestamptz[]
) RETURNS TABLE (
    symbol           text,
    bucket           timestamptz,
    open             double precision,
    high             double precision,
    low              double precision,
    close            double precision,
    volume           double precision,
    quote_volume     double precision,
    trades           bigint,
    taker_buy_volume double precision,
    taker_buy_quote  double precision
)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format($sql$
        SELECT c.symbol,
               date_bin($1, c.open_time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
               (min(ARRAY[extract(epoch FROM c.open_time)::float8, c.open]))[2],
               max(c.high),
               min(c.low),
               (max(ARRAY[extract(epoch FROM c.open_time)::float8, c.close]))[2],
               sum(c.volume),
               sum(c.quote_volume),
               sum(c.trades)::bigint,
               sum(c.taker_buy_volume),
               sum(c.taker_buy_quote)
        FROM unnest($2, $3, $4) AS r (symbol, start, stop)
        JOIN %s c ON c.symbol = r.symbol AND c.open_time >= r.start AND c.open_time < r.stop
        GROUP BY c.symbol, bucket
    $sql$, source) USING step, symbols, starts, stops;
END $$;

CREATE TABLE candles_1h (
    symbol           text             NOT NULL,
    open_time        timestamptz      NOT NULL,
    open             double precision NOT NULL,
    high             double precision NOT NULL,
    low              double precision NOT NULL,
    close            double precision NOT NULL,
    volume           double precision NOT NULL,
    quote_volume     double precision NOT NULL,
    trades           bigint           NOT NULL,
    taker_buy_volume double precision NOT NULL,
    taker_buy_quote  double precision NOT NULL,
    PRIMARY KEY (symbol, open_time)
);

-- Recompute the hours (symbol, hour) given from their stored minutes; after a delete
-- (`removed`), an hour left without minutes loses its row.
CREATE FUNCTION roll_up_candle_hours(symbols text[], hours timestamptz[], removed boolean) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO candles_1h AS h (symbol, open_time, open, high, low, close, volume, quote_volume,
                                 trades, taker_buy_volume, taker_buy_quote)
    SELECT b.symbol, b.bucket, b.open, b.high, b.low, b.close, b.volume, b.quote_volume,
           b.trades, b.taker_buy_volume, b.taker_buy_quote
    FROM candle_bins('candles_1m', interval '1 hour', symbols, hours,
                     array(SELECT t + interval '1 hour' FROM unnest(hours) WITH ORDINALITY AS u (t, i) ORDER BY i)) b
    ON CONFLICT (symbol, open_time) DO UPDATE SET
        open = EXCLUDED.open,
        high = EXCLUDED.high,
        low = EXCLUDED.low,
        close = EXCLUDED.close,
        volume = EXCLUDED.volume,
        quote_volume = EXCLUDED.quote_volume,
        trades = EXCLUDED.trades,
        taker_buy_volume = EXCLUDED.taker_buy_volume,
        taker_buy_quote = EXCLUDED.taker_buy_quote;
    DELETE FROM candles_1h h
    USING unnest(symbols, hours) AS r (symbol, hour)
    WHERE removed AND h.symbol = r.symbol AND h.open_time = r.hour
      AND NOT EXISTS (
          SELECT 1 FROM candles_1m m
          WHERE m.symbol = r.symbol AND m.open_time >= r.hour AND m.open_time < r.hour + interval '1 hour');
$$;

-- Statement trigger: the distinct hours of the rows a statement inserted, updated or deleted.
CREATE FUNCTION candles_1m_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roll_up_candle_hours(array_agg(d.symbol), array_agg(d.hour), TG_OP = 'DELETE')
    FROM (SELECT DISTINCT c.symbol, date_bin(interval '1 hour', c.open_time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS hour
          FROM changed c) d
    HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE TRIGGER candles_1m_roll_up_insert AFTER INSERT ON candles_1m
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION candles_1m_changed();
CREATE TRIGGER candles_1m_roll_up_update AFTER UPDATE ON candles_1m
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION candles_1m_changed();
CREATE TRIGGER candles_1m_roll_up_delete AFTER DELETE ON candles_1m
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION candles_1m_changed();

CREATE FUNCTION candles_1m_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE candles_1h;
    RETURN NULL;
END $$;

CREATE TRIGGER candles_1m_roll_up_truncate AFTER TRUNCATE ON candles_1m
    FOR EACH STATEMENT EXECUTE FUNCTION candles_1m_truncated();

-- Dropping a day of minutes drops its hours too (retention keeps the two tables alike).
CREATE OR REPLACE FUNCTION drop_candle_partitions_before(cutoff date) RETURNS integer
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
    DELETE FROM candles_1h WHERE open_time < (cutoff::timestamp AT TIME ZONE 'UTC');
    RETURN dropped;
END $$;

-- The minutes stored before this migration.
SELECT roll_up_candle_hours(array_agg(d.symbol), array_agg(d.hour), false)
FROM (SELECT DISTINCT symbol, date_bin(interval '1 hour', open_time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS hour
      FROM candles_1m) d
HAVING count(*) > 0;
