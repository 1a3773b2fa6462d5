{{ config(
    materialized='table',
    engine='MergeTree',
    order_by='(organization_id, date, billable_metric_code, customer_id)',
    projections=[{'name': 'by_customer', 'query': 'select * order by organization_id, customer_id, date'}],
) }}
-- Raw usage per day, metric, customer and subscription (UTC days): events received and the sum
-- of the metric's numeric field (not billing units: aggregation, filters and rounding are
-- applied by rating). The event counts come from fct_usage_daily_by_subscription (aggregated
-- once per day); subscriptions and customers are joined on every build, so a subscription
-- created after its first events still gets them. Events of unknown subscriptions keep an
-- empty customer. Sorted for the Usage page (an organization's days); the by_customer
-- projection serves Customer 360 (one customer's days).
with subscription_customers as (
    select organization_id, external_subscription_id, any(customer_id) as customer_id
    from {{ ref('stg_warehouse__subscriptions') }}
    group by organization_id, external_subscription_id
)

select
    d.organization_id as organization_id,
    d.date as date,
    d.billable_metric_code as billable_metric_code,
    s.customer_id as customer_id,
    c.external_customer_id as external_customer_id,
    d.external_subscription_id as external_subscription_id,
    d.events_count as events_count,
    d.field_value_sum as field_value_sum
from {{ ref('fct_usage_daily_by_subscription') }} as d
left join subscription_customers as s
    on s.organization_id = d.organization_id and s.external_subscription_id = d.external_subscription_id
left join {{ ref('stg_warehouse__customers') }} as c
    on c.organization_id = d.organization_id and c.customer_id = s.customer_id
