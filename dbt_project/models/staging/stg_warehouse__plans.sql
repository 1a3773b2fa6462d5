select
    organization_id,
    id as plan_id,
    code as plan_code,
    coalesce(invoice_display_name, name) as plan_display_name,
    interval,
    amount_cents,
    amount_currency,
    trial_period,
    pay_in_advance,
    bill_charges_monthly,
    minimum_commitment_amount_cents,
    minimum_commitment_tax_ids,
    tax_ids,
    version as plan_version
from {{ source('warehouse', 'plans') }} final
where is_deleted = 0
