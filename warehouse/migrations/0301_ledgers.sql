-- Invoicing records, part 2: credit notes and the ledgers consumed by invoices.
-- Wallet credit consumption is written to wallet_transactions (migration 0206) as outbound,
-- settled rows with id UUIDv5(invoice, wallet).
CREATE TABLE IF NOT EXISTS {database}.coupon_consumptions (
    organization_id UUID,
    applied_coupon_id UUID,
    invoice_id UUID,
    id UUID COMMENT 'UUIDv5(invoice, applied coupon)',
    coupon_id UUID,
    customer_id UUID,
    amount_cents Int64,
    currency LowCardinality(String),
    remaining_amount_cents Nullable(Int64) COMMENT 'Balance left after this invoice (fixed once coupons)',
    remaining_frequency Nullable(Int32) COMMENT 'Invoices left after this one (recurring coupons)',
    terminated UInt8,
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (organization_id, applied_coupon_id, invoice_id)
COMMENT 'Invoicing records: coupon amounts consumed by finalized invoices';

CREATE TABLE IF NOT EXISTS {database}.credit_notes (
    organization_id UUID,
    id UUID,
    invoice_id UUID,
    customer_id UUID,
    sequential_id UInt64,
    number String,
    reason LowCardinality(String) COMMENT 'duplicated_charge | product_unsatisfactory | order_change | order_cancellation | fraudulent_charge | other',
    description Nullable(String),
    credit_status LowCardinality(Nullable(String)) COMMENT 'available | consumed | voided',
    refund_status LowCardinality(Nullable(String)) COMMENT 'pending | succeeded | failed',
    currency LowCardinality(String),
    credit_amount_cents Int64,
    refund_amount_cents Int64,
    coupons_adjustment_amount_cents Int64,
    sub_total_excluding_taxes_amount_cents Int64,
    taxes_amount_cents Int64,
    total_amount_cents Int64,
    issuing_date Date,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (organization_id, id)
COMMENT 'Invoicing records: credit notes (corrections of finalized invoices)';

CREATE TABLE IF NOT EXISTS {database}.credit_note_items (
    organization_id UUID,
    credit_note_id UUID,
    id UUID,
    fee_id UUID,
    amount_cents Int64,
    precise_amount_cents Decimal(38, 12),
    currency LowCardinality(String),
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (organization_id, credit_note_id, id)
COMMENT 'Invoicing records: credit note items, one per credited fee';

CREATE TABLE IF NOT EXISTS {database}.credit_note_consumptions (
    organization_id UUID,
    credit_note_id UUID,
    invoice_id UUID,
    id UUID COMMENT 'UUIDv5(invoice, credit note)',
    customer_id UUID,
    amount_cents Int64,
    currency LowCardinality(String),
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (organization_id, credit_note_id, invoice_id)
COMMENT 'Invoicing records: credit note balances consumed by later invoices';
