-- Usage events as received by the ingest API: append-only, one row per accepted event.
--
-- Sorting key (organization_id, external_subscription_id, code, timestamp, transaction_id):
-- rating reads one subscription's events of one metric over a time range, so those three lead
-- the key and such a scan reads a contiguous range of granules; months are pruned by partition.
--
-- Duplicates: the dedup key of Lago's rule is (organization_id, external_subscription_id,
-- transaction_id). A retry of the same event repeats its code and timestamp too, so retries share
-- the whole sorting key and ReplacingMergeTree(ingested_at) collapses them on merge, keeping the
-- row with the latest ingested_at. A transaction_id re-sent with a different code or timestamp
-- (a correction) lands on another key, or in another monthly partition, and is not collapsed by
-- the table: readers dedup with
--   argMax(..., ingested_at) GROUP BY organization_id, external_subscription_id, transaction_id
-- (the dbt staging model does exactly this), so the latest ingested version of an event wins,
-- consistently with the table's own merges. Queries never rely on merges having happened.
--
-- properties: every value is stored as text (strings as-is, numbers, booleans and objects as
-- their JSON text) so Map lookups stay cheap; numeric aggregation casts with toDecimal128OrNull.
-- raw: the event exactly as received (one JSON object), kept compressed for audit.
CREATE TABLE IF NOT EXISTS {database}.events
(
    organization_id UUID,
    external_subscription_id String,
    external_customer_id String DEFAULT '',
    transaction_id String,
    code LowCardinality(String),
    timestamp DateTime64(3, 'UTC'),
    properties Map(String, String),
    precise_total_amount_cents Nullable(Decimal(38, 12)),
    ingested_at DateTime64(6, 'UTC') DEFAULT now64(6),
    raw String CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (organization_id, external_subscription_id, code, timestamp, transaction_id);
