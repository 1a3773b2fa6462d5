-- A minmax skip index on events.ingested_at: an incremental rating run (int_rating_periods) and
-- the views that rate the events ingested since an instant (fct_pay_in_advance_fees_since) ask
-- for `ingested_at > X`. A part holds one insert's events until merges, and merges stay within a
-- month (the partition), so the granules of the months that received no event since X hold only
-- older ingested_at and are skipped instead of reading the column of every stored event; only
-- the months with new or late events are read (and filtered row by row). The index never skips
-- a granule holding a match.
ALTER TABLE {database}.events
    ADD INDEX IF NOT EXISTS events_ingested_at_minmax ingested_at TYPE minmax GRANULARITY 1;

-- Parts written before the index existed get it too (a mutation writing the index files only).
ALTER TABLE {database}.events MATERIALIZE INDEX events_ingested_at_minmax;
