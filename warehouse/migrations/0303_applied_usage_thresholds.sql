-- Invoicing records, part 4: the usage thresholds a progressive-billing invoice was issued for
-- (Lago's applied_usage_thresholds). A fixed threshold is applied once per subscription; a
-- recurring one once per step, crossed_amount_cents telling which step (largest fixed threshold
-- + n x step). Rows count once their invoice is finalized; a re-run writes the same keys.
CREATE TABLE IF NOT EXISTS {database}.applied_usage_thresholds (
    organization_id UUID,
    subscription_id UUID,
    usage_threshold_id UUID,
    crossed_amount_cents Int64 COMMENT 'Lifetime usage level crossed: the threshold, or for a recurring one the step reached',
    invoice_id UUID,
    threshold_display_name Nullable(String),
    amount_cents Int64 COMMENT 'The threshold as configured',
    recurring UInt8,
    lifetime_usage_amount_cents Int64 COMMENT 'Lifetime usage when the crossing was detected',
    created_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (organization_id, subscription_id, usage_threshold_id, crossed_amount_cents)
COMMENT 'Invoicing records: usage thresholds applied by progressive-billing invoices';
