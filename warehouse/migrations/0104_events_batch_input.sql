-- The write path of large Lago batches (POST /api/v1/events/batch): one TabSeparated row per
-- request,
--   organization_id, request_id, ingested_at, max_timestamp, max_event_bytes, event_count,
--   events_json
-- (events_json: the request's events as one JSON array, as the ingest API read them; event_count:
-- how many) into events_batch_input (engine Null). The
-- view splits the events array in the engine and hands each event to events_input as one line,
-- so a batch takes the bulk path's rules and checks (migration 0102: events_input_mv, then
-- events or events_rejected) without Python handling each event's JSON.
--
-- Each line is the event's JSON as the engine re-serializes it (JSONExtractArrayRaw): compact,
-- numbers in the engine's spelling (1.0 -> 1), which is also how properties store numbers.
-- If the engine reads another number of events than the API did (JSON its parser reads
-- otherwise), the request becomes one invalid line, so it is refused whole, never half stored.
CREATE TABLE IF NOT EXISTS {database}.events_batch_input
(
    organization_id UUID,
    request_id UUID,
    ingested_at DateTime64(6, 'UTC'),
    max_timestamp DateTime64(3, 'UTC'),
    max_event_bytes UInt32,
    event_count UInt32,
    events_json String
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.events_batch_input_mv TO {database}.events_input
AS WITH JSONExtractArrayRaw(events_json) AS lines
SELECT
    organization_id,
    request_id,
    ingested_at,
    max_timestamp,
    max_event_bytes,
    arrayJoin(if(length(lines) = event_count, lines, ['"unreadable events"'])) AS line
FROM {database}.events_batch_input;
