{{ config(materialized='table', engine='MergeTree', order_by='(organization_id, currency, month, customer_id)') }}
-- Revenue per month by customer, plan, metric and fee type, from two sources kept side by side:
--   rated_amount      fees rated by dbt (fct_fees) with a billing date in the month, invoiced
--                     or not yet
--   invoiced_amount_cents  lines of finalized invoices issued in the month
with rated as (
    select
        organization_id, toStartOfMonth(billing_date) as month, currency, customer_id,
        external_customer_id, plan_id, ifNull(billable_metric_code, '') as billable_metric_code,
        fee_type, sum(amount) as rated_amount, toInt64(sum(amount_cents)) as rated_amount_cents,
        toInt64(0) as invoiced_amount_cents
    from {{ ref('fct_fees') }}
    group by organization_id, month, currency, customer_id, external_customer_id, plan_id,
        billable_metric_code, fee_type
),

invoiced as (
    select
        organization_id, issuing_month as month, currency, customer_id, external_customer_id,
        plan_id, ifNull(billable_metric_code, '') as billable_metric_code, fee_type,
        toDecimal128(0, 12) as rated_amount, toInt64(0) as rated_amount_cents,
        toInt64(sum(amount_cents)) as invoiced_amount_cents
    from {{ ref('fct_invoice_lines') }}
    group by organization_id, month, currency, customer_id, external_customer_id, plan_id,
        billable_metric_code, fee_type
),

combined as (
    select * from rated
    union all
    select * from invoiced
)

select
    c.organization_id as organization_id,
    c.month as month,
    cast(c.currency as LowCardinality(String)) as currency,
    c.customer_id as customer_id,
    any(c.external_customer_id) as external_customer_id,
    c.plan_id as plan_id,
    ifNull(any(p.plan_code), '') as plan_code,
    c.billable_metric_code as billable_metric_code,
    cast(c.fee_type as LowCardinality(String)) as fee_type,
    toDecimal128(sum(c.rated_amount), 12) as rated_amount,
    toInt64(sum(c.rated_amount_cents)) as rated_amount_cents,
    toInt64(sum(c.invoiced_amount_cents)) as invoiced_amount_cents
from combined as c
left join {{ ref('stg_warehouse__plans') }} as p
    on p.organization_id = c.organization_id and p.plan_id = c.plan_id
group by c.organization_id, c.month, c.currency, c.customer_id, c.plan_id, c.billable_metric_code, c.fee_type
settings join_use_nulls = 1
