-- The charge's default price, parsed once out of its Lago-shaped properties JSON.
select
    organization_id,
    id as charge_id,
    plan_id,
    billable_metric_id,
    position,
    charge_model,
    grouped_by,
    pay_in_advance,
    invoiceable,
    prorated,
    min_amount_cents,
    invoice_display_name,
    tax_ids,
    created_at,
    version as charge_version,
    {{ pricing_columns('properties') }}
from (
    select *, {{ json_tiers('properties') }} as tiers
    from {{ source('warehouse', 'charges') }} final
    where is_deleted = 0
)
