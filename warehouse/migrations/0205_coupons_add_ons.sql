-- Billing catalog: coupons, coupons applied to customers, add-ons.
-- Remaining balances of applied coupons are consumed by invoicing in its own ledger.
CREATE TABLE IF NOT EXISTS {database}.coupons (
    organization_id UUID,
    id UUID,
    code String COMMENT 'Unique per organization among live coupons',
    name String,
    description Nullable(String),
    coupon_type LowCardinality(String) COMMENT 'fixed_amount | percentage',
    amount_cents Nullable(Int64) COMMENT 'fixed_amount coupons',
    amount_currency LowCardinality(Nullable(String)),
    percentage_rate Nullable(Decimal(38, 12)) COMMENT 'percentage coupons: 10 means 10 %',
    frequency LowCardinality(String) COMMENT 'once | recurring | forever',
    frequency_duration Nullable(Int32) COMMENT 'Number of periods (recurring only)',
    reusable UInt8 DEFAULT 1 COMMENT 'Can be applied to the same customer more than once',
    expiration LowCardinality(String) COMMENT 'no_expiration | time_limit',
    expiration_at Nullable(DateTime64(3, 'UTC')),
    limited_plans UInt8 DEFAULT 0,
    plan_ids Array(UUID) COMMENT 'Plans the coupon is limited to',
    limited_billable_metrics UInt8 DEFAULT 0,
    billable_metric_ids Array(UUID) COMMENT 'Billable metrics the coupon is limited to',
    status LowCardinality(String) DEFAULT 'active' COMMENT 'active | terminated',
    terminated_at Nullable(DateTime64(3, 'UTC')),
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: coupons (Lago coupons)';

CREATE TABLE IF NOT EXISTS {database}.applied_coupons (
    organization_id UUID,
    id UUID,
    coupon_id UUID,
    customer_id UUID,
    amount_cents Nullable(Int64) COMMENT 'Overrides the coupon amount when set',
    amount_currency LowCardinality(Nullable(String)),
    percentage_rate Nullable(Decimal(38, 12)) COMMENT 'Overrides the coupon rate when set',
    frequency LowCardinality(String) COMMENT 'once | recurring | forever (copied from the coupon unless overridden)',
    frequency_duration Nullable(Int32),
    status LowCardinality(String) DEFAULT 'active' COMMENT 'active | terminated',
    terminated_at Nullable(DateTime64(3, 'UTC')),
    created_at DateTime64(3, 'UTC') COMMENT 'Application date: the oldest application applies first',
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: coupons applied to customers (Lago applied_coupons)';

CREATE TABLE IF NOT EXISTS {database}.add_ons (
    organization_id UUID,
    id UUID,
    code String COMMENT 'Unique per organization among live add-ons',
    name String,
    invoice_display_name Nullable(String),
    description Nullable(String),
    amount_cents Int64,
    amount_currency LowCardinality(String),
    tax_ids Array(UUID),
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: add-ons for one-off invoices (Lago add_ons)';
