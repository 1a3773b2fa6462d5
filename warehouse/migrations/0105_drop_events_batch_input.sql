-- Lago batches no longer travel as JSON arrays for the engine to split (migration 0104): the
-- ingest API reads every batch into the events table's columns and inserts them straight into
-- events, which costs the warehouse a third of the view chain per event and none of its fixed
-- query analysis per INSERT (ingestion/README.md). Nothing writes to these any more.
DROP VIEW IF EXISTS {database}.events_batch_input_mv;

DROP TABLE IF EXISTS {database}.events_batch_input;
