{{ config(materialized='table', engine='MergeTree', order_by='(organization_id, date, billable_metric_code)') }}
-- Usage per day and metric over all customers, for trend charts.
select
    u.organization_id as organization_id,
    u.date as date,
    u.billable_metric_code as billable_metric_code,
    sum(u.events_count) as events_count,
    toDecimal128(sum(u.field_value_sum), 12) as field_value_sum,
    uniqExact(u.customer_id) as customers
from {{ ref('fct_usage_daily') }} as u
group by u.organization_id, u.date, u.billable_metric_code
