-- Billing catalog: billable metrics (how events become units).
CREATE TABLE IF NOT EXISTS {database}.billable_metrics (
    organization_id UUID,
    id UUID,
    code String COMMENT 'Matches events.code; unique per organization among live metrics',
    name String,
    description Nullable(String),
    aggregation_type LowCardinality(String) COMMENT 'count_agg | sum_agg | max_agg | unique_count_agg | latest_agg | weighted_sum_agg | custom_agg',
    field_name Nullable(String) COMMENT 'Event property aggregated (all but count_agg)',
    expression Nullable(String) COMMENT 'Lago expression computing the event value from its properties; NULL means use field_name',
    recurring UInt8 DEFAULT 0 COMMENT 'Units carry over into later periods',
    rounding_function LowCardinality(Nullable(String)) COMMENT 'round | ceil | floor, applied to the aggregated units',
    rounding_precision Nullable(Int32) COMMENT 'Decimal places; may be negative (-2 rounds to hundreds)',
    weighted_interval LowCardinality(Nullable(String)) COMMENT 'seconds (weighted_sum_agg only)',
    filters Map(String, Array(String)) COMMENT 'Filterable event properties: key -> allowed values',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: billable metrics (Lago billable_metrics)';
