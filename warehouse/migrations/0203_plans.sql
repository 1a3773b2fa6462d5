-- Billing catalog: plans, their charges, charge filters and usage thresholds.
-- A subscription created with plan_overrides gets its own child plan (parent_id = the plan it
-- overrides) holding copies of the charges with the overridden values, as Lago does.
CREATE TABLE IF NOT EXISTS {database}.plans (
    organization_id UUID,
    id UUID,
    parent_id Nullable(UUID) COMMENT 'Set on a per-subscription override plan: the plan it was derived from',
    code String COMMENT 'Unique per organization among live parent plans (override plans reuse the parent code)',
    name String,
    invoice_display_name Nullable(String),
    description Nullable(String),
    interval LowCardinality(String) COMMENT 'weekly | monthly | quarterly | semiannual | yearly',
    amount_cents Int64 COMMENT 'Subscription fee per period, minor units of amount_currency',
    amount_currency LowCardinality(String),
    trial_period Decimal(18, 6) DEFAULT 0 COMMENT 'Trial length in days',
    pay_in_advance UInt8 DEFAULT 0 COMMENT 'Subscription fee billed at the start of the period',
    bill_charges_monthly UInt8 DEFAULT 0 COMMENT 'Yearly/semiannual plans: bill usage charges every month',
    minimum_commitment_id Nullable(UUID),
    minimum_commitment_amount_cents Nullable(Int64) COMMENT 'Minimum spend per period (NULL: none)',
    minimum_commitment_invoice_display_name Nullable(String),
    minimum_commitment_tax_ids Array(UUID),
    tax_ids Array(UUID) COMMENT 'Taxes of the plan (taxes.id)',
    metadata String DEFAULT '{}' COMMENT 'JSON object of string values',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: plans (Lago plans)';

CREATE TABLE IF NOT EXISTS {database}.charges (
    organization_id UUID,
    id UUID,
    plan_id UUID,
    billable_metric_id UUID,
    parent_id Nullable(UUID) COMMENT 'On an override plan: the charge of the parent plan this one overrides',
    code Nullable(String),
    position UInt32 COMMENT 'Order of the charge in the plan',
    charge_model LowCardinality(String) COMMENT 'standard | graduated | graduated_percentage | package | percentage | volume | dynamic',
    properties String COMMENT 'JSON object exactly in Lago shape for the charge model, amounts as decimal strings (default price when filters exist)',
    grouped_by Array(String) COMMENT 'Copy of properties.grouped_by: event properties that split the fee into groups',
    pay_in_advance UInt8 DEFAULT 0,
    invoiceable UInt8 DEFAULT 1 COMMENT 'Pay-in-advance fees put on an invoice (0: fees only, paid elsewhere)',
    regroup_paid_fees LowCardinality(Nullable(String)) COMMENT 'NULL | invoice',
    prorated UInt8 DEFAULT 0,
    min_amount_cents Int64 DEFAULT 0 COMMENT 'Per-charge minimum spend per period (0: none)',
    invoice_display_name Nullable(String),
    tax_ids Array(UUID) COMMENT 'Taxes of the charge, taking precedence over plan and customer taxes',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: charges of plans (Lago charges)';

CREATE TABLE IF NOT EXISTS {database}.charge_filters (
    organization_id UUID,
    id UUID,
    charge_id UUID,
    plan_id UUID,
    position UInt32 COMMENT 'Order within the charge; with identical filters the older (lower created_at, then position) wins',
    invoice_display_name Nullable(String),
    properties String COMMENT 'JSON object in Lago shape for the charge model: the price of events matching this filter',
    grouped_by Array(String) COMMENT 'Copy of properties.grouped_by for this filter',
    values Map(String, Array(String)) COMMENT 'billable metric filter key -> matching values; the value __ALL_FILTER_VALUES__ means any value of the key',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: charge filters, each with its own price (Lago charge_filters)';

CREATE TABLE IF NOT EXISTS {database}.usage_thresholds (
    organization_id UUID,
    id UUID,
    plan_id UUID,
    threshold_display_name Nullable(String),
    amount_cents Int64 COMMENT 'Progressive billing threshold on cumulative usage, minor units of the plan currency',
    recurring UInt8 DEFAULT 0 COMMENT 'At most one per plan: a step repeating above the largest fixed threshold',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: progressive billing thresholds of plans (Lago usage_thresholds)';
