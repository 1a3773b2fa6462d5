{{ config(materialized='table', engine='MergeTree', order_by='(organization_id, month, currency, billable_metric_code, customer_id)') }}
-- Lago's invoiced usage: usage (charge) fees of finalized invoices by issuing month and metric.
select
    organization_id,
    issuing_month as month,
    currency,
    assumeNotNull(billable_metric_code) as billable_metric_code,
    customer_id,
    any(external_customer_id) as external_customer_id,
    toInt64(sum(amount_cents)) as amount_cents,
    sum(units) as units
from {{ ref('fct_invoice_lines') }}
where fee_type = 'charge' and billable_metric_code is not null
group by organization_id, month, currency, billable_metric_code, customer_id
