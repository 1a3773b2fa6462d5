-- Invoicing records, part 3: payments, payment provider references, webhooks in and out.
CREATE TABLE IF NOT EXISTS {database}.payments (
    organization_id UUID,
    id UUID COMMENT 'UUIDv5(provider, provider payment id)',
    invoice_id UUID,
    provider LowCardinality(String) COMMENT 'stripe | manual',
    provider_payment_id String,
    amount_cents Int64,
    currency LowCardinality(String),
    status LowCardinality(String) COMMENT 'pending | succeeded | failed',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (organization_id, invoice_id, id)
COMMENT 'Invoicing records: payments of invoices';

-- Our object <-> provider object, with the last sync outcome; the latest row wins.
CREATE TABLE IF NOT EXISTS {database}.provider_references (
    organization_id UUID,
    provider LowCardinality(String),
    object_type LowCardinality(String) COMMENT 'customer | invoice | credit_note',
    object_id UUID,
    provider_object_id String,
    status LowCardinality(String) COMMENT 'synced | failed | paid | payment_failed | void',
    attempts UInt32,
    last_error Nullable(String),
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (organization_id, provider, object_type, object_id)
COMMENT 'Invoicing records: ids and sync state of our objects at payment providers';

-- Provider webhooks received (deduplicated by the provider event id).
CREATE TABLE IF NOT EXISTS {database}.provider_events (
    organization_id UUID,
    provider LowCardinality(String),
    provider_event_id String,
    event_type LowCardinality(String),
    provider_object_id String,
    payload String,
    received_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(received_at)
ORDER BY (organization_id, provider, provider_event_id)
COMMENT 'Invoicing records: webhooks received from payment providers';

-- Outgoing webhooks to the organization's endpoints: one row per attempt (a log, never collapsed).
CREATE TABLE IF NOT EXISTS {database}.webhook_deliveries (
    organization_id UUID,
    id UUID COMMENT 'UUIDv5(webhook type, object id, endpoint): the same for every attempt',
    webhook_type LowCardinality(String),
    object_type LowCardinality(String),
    object_id UUID,
    endpoint_url String,
    payload String,
    attempt UInt32,
    status LowCardinality(String) COMMENT 'succeeded | failed',
    http_status Nullable(UInt16),
    error Nullable(String),
    created_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
ORDER BY (organization_id, created_at, id)
COMMENT 'Invoicing records: outgoing webhook delivery attempts';
