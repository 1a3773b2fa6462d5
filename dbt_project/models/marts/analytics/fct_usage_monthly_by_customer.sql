{{ config(materialized='table', engine='MergeTree', order_by='(organization_id, month, billable_metric_code, external_customer_id)') }}
-- Usage per month, metric and customer: fct_usage_daily summed over the month's days and the
-- customer's subscriptions, so totals over long date ranges read whole months here and only the
-- partial months at the range's edges day by day.
select
    u.organization_id as organization_id,
    toStartOfMonth(u.date) as month,
    u.billable_metric_code as billable_metric_code,
    u.customer_id as customer_id,
    u.external_customer_id as external_customer_id,
    sum(u.events_count) as events_count,
    toDecimal128(sum(u.field_value_sum), 12) as field_value_sum
from {{ ref('fct_usage_daily') }} as u
group by organization_id, month, billable_metric_code, customer_id, external_customer_id
