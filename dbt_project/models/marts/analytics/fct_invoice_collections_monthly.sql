{{ config(materialized='table', engine='MergeTree', order_by='(organization_id, month, currency, payment_status, customer_id)') }}
-- Lago's invoice collections: finalized invoices by issuing month and payment status.
select
    organization_id,
    issuing_month as month,
    currency,
    payment_status,
    customer_id,
    any(external_customer_id) as external_customer_id,
    toInt64(sum(total_amount_cents)) as amount_cents,
    count() as invoices_count
from {{ ref('fct_invoices') }}
where status = 'finalized'
group by organization_id, month, currency, payment_status, customer_id
