-- Billing catalog, part 1: customers.
-- Every catalog table shares the same bookkeeping columns at the end:
--   created_at / updated_at   when the record was created / this version was written (UTC)
--   deleted_at                when the record was deleted (NULL while alive)
--   changed_by                who wrote this version: the API key id, or 'system'
--   version                   monotonic write version (microseconds since epoch, strictly increasing)
--   is_deleted                1 on the tombstone version written by a delete
-- Tables are ReplacingMergeTree(version, is_deleted): read the current state with FINAL. Every
-- version also lands in the <table>_history twin (migration 0210), which never collapses.
CREATE TABLE IF NOT EXISTS {database}.customers (
    organization_id UUID,
    id UUID,
    external_id String COMMENT 'Unique per organization among live customers (enforced by the API)',
    name Nullable(String),
    firstname Nullable(String),
    lastname Nullable(String),
    customer_type LowCardinality(Nullable(String)) COMMENT 'company | individual',
    legal_name Nullable(String),
    legal_number Nullable(String),
    tax_identification_number Nullable(String),
    email Nullable(String),
    phone Nullable(String),
    url Nullable(String),
    logo_url Nullable(String),
    address_line1 Nullable(String),
    address_line2 Nullable(String),
    city Nullable(String),
    state Nullable(String),
    zipcode Nullable(String),
    country Nullable(String) COMMENT 'ISO 3166 alpha-2',
    shipping_address String DEFAULT '{}' COMMENT 'JSON object in Lago shape: address_line1, address_line2, city, zipcode, state, country',
    currency LowCardinality(Nullable(String)) COMMENT 'ISO 4217; NULL until set or until the first subscription fixes it',
    timezone Nullable(String) COMMENT 'IANA name; NULL means the organization timezone applies',
    net_payment_term Nullable(Int32) COMMENT 'Days; NULL means the organization setting applies',
    invoice_grace_period Nullable(Int32) COMMENT 'Days; NULL means the organization setting applies',
    document_locale Nullable(String),
    finalize_zero_amount_invoice LowCardinality(String) DEFAULT 'inherit' COMMENT 'inherit | finalize | skip',
    payment_provider LowCardinality(Nullable(String)) COMMENT 'stripe | gocardless | adyen | ...',
    payment_provider_code Nullable(String),
    provider_customer_id Nullable(String) COMMENT 'Customer id at the payment provider, e.g. cus_... for Stripe',
    provider_sync UInt8 DEFAULT 0 COMMENT 'Create the customer at the provider when missing',
    provider_payment_methods Array(String),
    metadata String DEFAULT '[]' COMMENT 'JSON array of {id, key, value, display_in_invoice}',
    tax_ids Array(UUID) COMMENT 'Taxes applied to this customer (taxes.id)',
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    deleted_at Nullable(DateTime64(3, 'UTC')),
    changed_by String DEFAULT 'system',
    version UInt64,
    is_deleted UInt8 DEFAULT 0
) ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (organization_id, id)
COMMENT 'Billing catalog: customers (Lago customers)';
