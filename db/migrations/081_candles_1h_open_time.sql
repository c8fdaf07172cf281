-- The what-if (db/what_if.py) asks for the oldest stored hour of a window: found through this
-- index instead of a scan of every symbol's hours. Hours never change their open time, so the
-- roll-up's updates stay HOT; each new hour adds one entry.
CREATE INDEX candles_1h_open_time_idx ON candles_1h (open_time);
