{{ config(materialized='table', engine='MergeTree', order_by='(organization_id, month, currency, customer_id)') }}
-- Lago's overdue balances: what is still owed on invoices past their due date at the rating
-- day, by the month the invoices fell due.
select
    organization_id,
    toStartOfMonth(payment_due_date) as month,
    currency,
    customer_id,
    any(external_customer_id) as external_customer_id,
    toInt64(sum(outstanding_amount_cents)) as amount_cents,
    groupArray(invoice_id) as invoice_ids
from {{ ref('fct_invoices') }}
where is_overdue
group by organization_id, month, currency, customer_id
