{{ config(materialized='table', engine='MergeTree', order_by='(organization_id, currency, month, customer_id)') }}
-- Lago's gross revenue: finalized invoices by issuing month (total after coupons, taxes and
-- credits), minus what credit notes refunded on them.
select
    organization_id,
    issuing_month as month,
    currency,
    customer_id,
    any(external_customer_id) as external_customer_id,
    toInt64(sum(total_amount_cents) - sum(refunded_amount_cents)) as amount_cents,
    count() as invoices_count
from {{ ref('fct_invoices') }}
where status = 'finalized'
group by organization_id, month, currency, customer_id
