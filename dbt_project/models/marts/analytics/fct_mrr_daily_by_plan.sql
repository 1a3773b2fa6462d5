{{ config(materialized='table', engine='MergeTree', order_by='(organization_id, currency, date, plan_code)') }}
-- Company MRR per day, currency and plan: fct_mrr_daily summed over customers, so trend charts
-- read a few rows per day instead of one per customer.
select
    d.organization_id as organization_id,
    d.currency as currency,
    d.date as date,
    d.plan_code as plan_code,
    toDecimal128(sum(d.subscription_mrr), 12) as subscription_mrr,
    toDecimal128(sum(d.usage_mrr), 12) as usage_mrr,
    toDecimal128(sum(d.mrr), 12) as mrr,
    uniqExactIf(d.customer_id, d.mrr > 0) as paying_customers
from {{ ref('fct_mrr_daily') }} as d
group by d.organization_id, d.currency, d.date, d.plan_code
