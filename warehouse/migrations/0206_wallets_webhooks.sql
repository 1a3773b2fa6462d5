-- Billing catalog: prepaid credit wallets, their transactions, webhook endpoints.
-- Balances are not stored here: they are the sum of settled transactions (inbound minus
-- outbound), outbound transactions being written by invoicing when credits are consumed.
CREATE TABLE IF NOT EXISTS {database}.wallets (
    organization_id UUID,
    id UUID,
    customer_id UUID,
    name Nullable(String),
    code Nullable(String),
    currency LowCardinality(String),
    rate_amount Decimal(38, 12) COMMENT 'Money per credit: credits * rate_amount = amount in currency',
    priority Int32 DEFAULT 50 COMMENT 'Lower applies first, then older wallets',
    status LowCardinality(String) DEFAULT 'active' COMMENT 'active | terminated',
    expiration_at Nullable(DateTime64(3, 'UTC')),
    terminated_at Nullable(DateTime64(3, 'UTC')),
    applies_to_fee_types Array(String) COMMENT 'Limit to fee types (charge, subscription, ...); empty: all',
    applies_to_billable_metric_ids Array(UUID) COMMENT 'Limit to charges of these metrics; empty: all',
    invoice_requires_successful_payment UInt8 DEFAULT 0,
    paid_top_up_min_amount_cents Nullable(Int64),
    paid_top_up_max_amount_cents Nullable(Int64),
    recurring_transaction_rules String DEFAULT '[]' COMMENT 'JSON array of Lago recurring top-up rules, each with its lago_id',
    metadata String DEFAULT '{}' COMMENT 'JSON object of string values',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: prepaid credit wallets (Lago wallets)';

CREATE TABLE IF NOT EXISTS {database}.wallet_transactions (
    organization_id UUID,
    id UUID,
    wallet_id UUID,
    customer_id UUID,
    transaction_type LowCardinality(String) COMMENT 'inbound | outbound',
    transaction_status LowCardinality(String) COMMENT 'purchased | granted | voided | invoiced',
    status LowCardinality(String) COMMENT 'pending | settled | failed (purchased credits settle when their invoice is paid)',
    source LowCardinality(String) DEFAULT 'manual' COMMENT 'manual | interval | threshold',
    credit_amount Decimal(38, 12) COMMENT 'Credits moved',
    amount Decimal(38, 12) COMMENT 'credit_amount * wallet rate_amount, in the wallet currency',
    invoice_id Nullable(UUID) COMMENT 'Invoice paying for purchased credits, or consuming credits',
    name Nullable(String),
    metadata String DEFAULT '[]' COMMENT 'JSON array of {key, value}',
    settled_at Nullable(DateTime64(3, 'UTC')),
    failed_at Nullable(DateTime64(3, 'UTC')),
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: wallet credit movements; a status change is a new version';

CREATE TABLE IF NOT EXISTS {database}.webhook_endpoints (
    organization_id UUID,
    id UUID,
    webhook_url String COMMENT 'Unique per organization among live endpoints',
    name Nullable(String),
    signature_algo LowCardinality(String) DEFAULT 'jwt' COMMENT 'jwt | hmac',
    event_types Array(String) COMMENT 'Event types delivered; empty: all',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: outgoing webhook endpoints (Lago webhook_endpoints)';
