-- A chart's minutes (`/api/candles` 1m, `/udf/history` 1, the feed's sparklines) are read from
-- the primary key alone. Ingest writes every symbol's minute at once, so one symbol's 500
-- consecutive minutes lie on 500 different heap pages of a partition (600 symbols a minute): the
-- chart read 500 pages for 500 rows (14 ms cold on a month-old deployment's data set). The key
-- now carries the columns a chart draws, so those reads are index-only scans (about 5 leaf pages
-- for 500 minutes; the visibility map is kept by autovacuum, and minutes are written once).
-- Same key columns: `ON CONFLICT (symbol, open_time)` and every partition's key are unchanged
-- (new partitions inherit the new definition). The key is rebuilt: on 30 days of 600 symbols
-- (26 million minutes) a few minutes, during which candle writes wait.
ALTER TABLE candles_1m DROP CONSTRAINT candles_1m_pkey;
ALTER TABLE candles_1m
    ADD CONSTRAINT candles_1m_pkey PRIMARY KEY (symbol, open_time) INCLUDE (open, high, low, close, quote_volume);
