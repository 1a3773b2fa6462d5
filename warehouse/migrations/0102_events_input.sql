-- The write path into events. Ingest sends one TabSeparated row per event:
--   organization_id, request_id, ingested_at, max_timestamp, max_event_bytes, line
-- (line: the event's JSON text) into events_input (engine Null: nothing is kept there). The
-- views below turn each line into an events row inside the engine (JSON parsing, type checks,
-- timestamp and decimal conversion), so the bulk path never handles single events in Python and
-- every path applies one set of rules (ingestion/validation.py applies the same rules first, to
-- name each bad event before anything is written).
--
-- Chain: events_input -> events_input_mv (parse once) -> events_parsed (Null)
--        -> events_parsed_mv (valid rows) -> events
--        -> events_rejected_mv (invalid rows) -> events_rejected
-- Invalid rows are diverted, not thrown: the embedded engine's streaming INSERT does not report
-- errors raised inside materialized views, so the writer asks events_rejected for its
-- request_id after each INSERT and treats any row there as a failed request.
-- The per-request limits (future window, event size) travel with each row because a view
-- cannot read the ingest settings.
CREATE TABLE IF NOT EXISTS {database}.events_input
(
    organization_id UUID,
    request_id UUID,
    ingested_at DateTime64(6, 'UTC'),
    max_timestamp DateTime64(3, 'UTC'),
    max_event_bytes UInt32,
    line String
)
ENGINE = Null;

CREATE TABLE IF NOT EXISTS {database}.events_parsed
(
    organization_id UUID,
    request_id UUID,
    external_subscription_id String,
    external_customer_id String,
    transaction_id String,
    code String,
    timestamp DateTime64(3, 'UTC'),
    properties Map(String, String),
    precise_total_amount_cents Nullable(Decimal(38, 12)),
    ingested_at DateTime64(6, 'UTC'),
    raw String,
    valid Bool
)
ENGINE = Null;

CREATE TABLE IF NOT EXISTS {database}.events_rejected
(
    organization_id UUID,
    request_id UUID,
    ingested_at DateTime64(6, 'UTC'),
    raw String CODEC(ZSTD(1))
)
ENGINE = MergeTree
ORDER BY (organization_id, request_id)
TTL toDateTime(ingested_at) + INTERVAL 7 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.events_input_mv TO {database}.events_parsed
AS WITH
    -- One parse per line: every top-level field with its raw JSON text.
    CAST(JSONExtractKeysAndValuesRaw(line), 'Map(String, String)') AS fields,
    fields['transaction_id'] AS transaction_id_raw,
    fields['external_subscription_id'] AS subscription_raw,
    fields['external_customer_id'] AS customer_raw,
    fields['code'] AS code_raw,
    fields['timestamp'] AS timestamp_raw,
    fields['properties'] AS properties_raw,
    fields['precise_total_amount_cents'] AS amount_raw,
    -- Text fields are JSON strings or whole numbers below 10^15 (ingestion/validation.py _text);
    -- a string's raw text starts with a quote.
    if(startsWith(transaction_id_raw, '"'), JSONExtractString(transaction_id_raw), transaction_id_raw) AS transaction_id_text,
    if(startsWith(subscription_raw, '"'), JSONExtractString(subscription_raw), subscription_raw) AS subscription_text,
    if(startsWith(customer_raw, '"'), JSONExtractString(customer_raw), customer_raw) AS customer_text,
    if(startsWith(code_raw, '"'), JSONExtractString(code_raw), code_raw) AS code_text,
    (startsWith(transaction_id_raw, '"') OR match(transaction_id_raw, '^-?[0-9]{1,15}$')) AND transaction_id_text != '' AS transaction_id_ok,
    (startsWith(subscription_raw, '"') OR match(subscription_raw, '^-?[0-9]{1,15}$')) AND subscription_text != '' AS subscription_ok,
    (startsWith(code_raw, '"') OR match(code_raw, '^-?[0-9]{1,15}$')) AND code_text != '' AS code_ok,
    customer_raw IN ('', 'null') OR startsWith(customer_raw, '"') OR match(customer_raw, '^-?[0-9]{1,15}$') AS customer_ok,
    -- Timestamp: absent means the time of receipt; unix seconds (number or numeric string,
    -- truncated to milliseconds) or ISO-8601.
    if(startsWith(timestamp_raw, '"'), JSONExtractString(timestamp_raw), timestamp_raw) AS timestamp_text,
    multiIf(
        timestamp_raw IN ('', 'null'), toDateTime64(ingested_at, 3, 'UTC'),
        match(timestamp_text, '^[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?$')
            AND toDecimal128OrNull(timestamp_text, 3) < 10413792000,
            toDateTime64(toDecimal128OrNull(timestamp_text, 3), 3, 'UTC'),
        startsWith(timestamp_raw, '"')
            AND match(timestamp_text, '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?)?(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?$'),
            parseDateTime64BestEffortOrNull(timestamp_text, 3, 'UTC'),
        NULL
    ) AS event_timestamp,
    isNotNull(event_timestamp)
        AND event_timestamp >= toDateTime64(0, 3, 'UTC')
        AND event_timestamp <= max_timestamp AS timestamp_ok,
    properties_raw IN ('', 'null') OR startsWith(properties_raw, '{') AS properties_ok,
    if(startsWith(amount_raw, '"'), JSONExtractString(amount_raw), amount_raw) AS amount_text,
    amount_raw IN ('', 'null')
        OR (match(amount_text, '^-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?$')
            AND isNotNull(toDecimal128OrNull(amount_text, 12))) AS amount_ok,
    transaction_id_ok AND subscription_ok AND code_ok AND customer_ok AND timestamp_ok
        AND properties_ok AND amount_ok AND length(line) <= max_event_bytes AS valid
SELECT
    organization_id,
    request_id,
    subscription_text AS external_subscription_id,
    if(customer_raw IN ('', 'null'), '', customer_text) AS external_customer_id,
    transaction_id_text AS transaction_id,
    code_text AS code,
    ifNull(event_timestamp, toDateTime64(0, 3, 'UTC')) AS timestamp,
    if(startsWith(properties_raw, '{'), JSONExtract(properties_raw, 'Map(String, String)'), map()) AS properties,
    if(amount_raw IN ('', 'null'), NULL, toDecimal128OrNull(amount_text, 12)) AS precise_total_amount_cents,
    ingested_at,
    line AS raw,
    valid
FROM {database}.events_input
WHERE notEmpty(trimBoth(line));

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.events_parsed_mv TO {database}.events
AS SELECT
    organization_id,
    external_subscription_id,
    external_customer_id,
    transaction_id,
    code,
    timestamp,
    properties,
    precise_total_amount_cents,
    ingested_at,
    raw
FROM {database}.events_parsed
WHERE valid;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.events_rejected_mv TO {database}.events_rejected
AS SELECT organization_id, request_id, ingested_at, raw
FROM {database}.events_parsed
WHERE NOT valid;
