-- `deliveries` churns a day's rows every day (each inserted, updated twice, deleted after the
-- retention window: about 2 million dead tuples a day against 20 million live ones on a month-old
-- deployment of 10,000 users). With autovacuum's default scale factor (0.2) it is vacuumed at about
-- 4 million dead tuples (17 %), and the dead tuples a vacuum of the whole table and its indexes
-- lets accumulate meanwhile took it past 20 % in the steady bench's simulated week. At 0.05 it is
-- vacuumed at about a million (5 %, twice a day at that volume), each pass with less to clean.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.05);
