-- Invoicing records, part 1: invoices, their frozen fees and taxes, numbering.
-- Records, not models: append-only, written by the invoicing assets, never rebuilt. Every row has a
-- deterministic id (UUIDv5 over its natural key) so a re-run writes the same keys again and
-- ReplacingMergeTree collapses them. Read with FINAL.
--
-- invoices.version = status_rank * 1e17 + microseconds since epoch: a later status always wins
-- (draft 1 < finalized 2 < voided 3), and within a status the latest write wins (payment status,
-- provider state). A draft written late by a concurrent run can therefore never hide a finalized
-- invoice.
CREATE TABLE IF NOT EXISTS {database}.invoices (
    organization_id UUID,
    id UUID,
    customer_id UUID,
    external_customer_id String,
    invoice_type LowCardinality(String) COMMENT 'subscription | add_on | one_off | advance_charges | progressive_billing',
    status LowCardinality(String) COMMENT 'draft | finalized | voided',
    payment_status LowCardinality(String) DEFAULT 'pending' COMMENT 'pending | succeeded | failed',
    sequential_id Nullable(UInt64) COMMENT 'Position in its numbering sequence, set at finalization',
    number String COMMENT 'Document number, set at finalization; drafts show <prefix>-DRAFT',
    billing_date Date COMMENT 'The billing day (customer timezone) this invoice was produced for',
    grouping_key String COMMENT 'What else made this invoice distinct on that day: pay-in-advance event, one-off request',
    issuing_date Date,
    payment_due_date Date,
    net_payment_term UInt32,
    grace_period_ends_on Date COMMENT 'Draft stays refreshable until this day; then finalized',
    timezone String,
    currency LowCardinality(String),
    fees_amount_cents Int64,
    progressive_billing_credit_amount_cents Int64,
    coupons_amount_cents Int64,
    sub_total_excluding_taxes_amount_cents Int64,
    taxes_amount_cents Int64,
    taxes_rate Decimal(38, 12),
    sub_total_including_taxes_amount_cents Int64,
    credit_notes_amount_cents Int64,
    prepaid_credit_amount_cents Int64,
    total_amount_cents Int64,
    total_paid_amount_cents Int64 DEFAULT 0,
    fees_version UInt64 COMMENT 'Content hash of the computation whose invoice_fees/taxes rows belong to this invoice',
    provider_sync_status LowCardinality(String) DEFAULT 'none' COMMENT 'none | pending | synced | failed',
    provider_error Nullable(String),
    created_at DateTime64(3, 'UTC'),
    finalized_at Nullable(DateTime64(3, 'UTC')),
    voided_at Nullable(DateTime64(3, 'UTC')),
    updated_at DateTime64(3, 'UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (organization_id, id)
COMMENT 'Invoicing records: invoices, one row per state change';

-- Fees frozen into invoice lines: a copy of fct_fees at invoicing time plus the credits applied.
-- Keyed by the computation (fees_version) so a refreshed draft never mixes lines of two versions.
CREATE TABLE IF NOT EXISTS {database}.invoice_fees (
    organization_id UUID,
    invoice_id UUID,
    fees_version UInt64,
    id UUID COMMENT 'fct_fees.fee_id',
    fee_type LowCardinality(String),
    is_true_up UInt8,
    customer_id UUID,
    subscription_id Nullable(UUID),
    external_subscription_id String,
    plan_id Nullable(UUID),
    charge_id Nullable(UUID),
    charge_filter_id Nullable(UUID),
    add_on_id Nullable(UUID),
    billable_metric_id Nullable(UUID),
    billable_metric_code Nullable(String),
    grouped_by Map(String, String),
    invoice_display_name String,
    pay_in_advance UInt8,
    source_transaction_id Nullable(String),
    period_from DateTime64(3, 'UTC'),
    period_to DateTime64(3, 'UTC'),
    currency LowCardinality(String),
    units Decimal(38, 12),
    events_count UInt64,
    precise_unit_amount Decimal(38, 12),
    amount Decimal(38, 12),
    amount_cents Int64,
    progressive_billing_credit_amount_cents Int64,
    precise_coupons_amount_cents Decimal(38, 12),
    taxes_base_amount_cents Decimal(38, 12),
    precise_taxes_amount_cents Decimal(38, 12),
    taxes_rate Decimal(38, 12),
    tax_codes Array(String),
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (organization_id, invoice_id, fees_version, id)
COMMENT 'Invoicing records: fees frozen into invoice line items';

CREATE TABLE IF NOT EXISTS {database}.invoice_applied_taxes (
    organization_id UUID,
    invoice_id UUID,
    fees_version UInt64,
    tax_code String,
    tax_name String,
    tax_rate Decimal(38, 12),
    fees_amount_cents Decimal(38, 12) COMMENT 'Taxable base: fees after progressive credit and coupons',
    amount_cents Int64 COMMENT 'Rounded once per invoice',
    currency LowCardinality(String),
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (organization_id, invoice_id, fees_version, tax_code)
COMMENT 'Invoicing records: taxes applied to invoices';

-- Sequential numbers. scope is 'organization' or 'customer:<customer_id>' (Lago document_numbering
-- per_organization / per_customer). An invoice keeps the first number it was given: the asset
-- reads existing numbers before allocating new ones.
CREATE TABLE IF NOT EXISTS {database}.invoice_numbers (
    organization_id UUID,
    invoice_id UUID,
    scope String,
    sequential_id UInt64,
    number String,
    assigned_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(assigned_at)
ORDER BY (organization_id, invoice_id)
COMMENT 'Invoicing records: invoice numbering sequences';
