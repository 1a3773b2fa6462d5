-- Organizations (tenants) and their API keys. Catalog tables: every change is a new row with a
-- higher version; is_deleted = 1 retires a row. Read them with FINAL.
CREATE TABLE IF NOT EXISTS {database}.organizations
(
    organization_id UUID,
    name String,
    default_currency LowCardinality(String) DEFAULT 'USD',
    timezone String DEFAULT 'UTC',
    invoice_grace_period UInt32 DEFAULT 0,
    net_payment_term UInt32 DEFAULT 0,
    document_numbering LowCardinality(String) DEFAULT 'per_customer',
    document_number_prefix String DEFAULT '',
    email Nullable(String),
    tax_codes Array(String) DEFAULT [],
    webhook_url Nullable(String),
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    version UInt64,
    is_deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY organization_id;

-- Only the sha256 of a key is stored; key_prefix (the first characters of the plaintext) lets an
-- operator recognise a key in listings without being able to use it.
CREATE TABLE IF NOT EXISTS {database}.api_keys
(
    organization_id UUID,
    api_key_id UUID,
    key_hash String,
    key_prefix String,
    name String,
    created_at DateTime64(3, 'UTC'),
    version UInt64,
    is_deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, api_key_id);
