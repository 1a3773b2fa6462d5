{{ config(materialized='table', engine='MergeTree', order_by='(organization_id, date, billable_metric_code, customer_id)') }}
-- Raw usage per day, metric, customer and subscription (UTC days): events received and the sum
-- of the metric's numeric field (not billing units: aggregation, filters and rounding are
-- applied by rating). Events of unknown subscriptions keep an empty customer.
with subscription_customers as (
    select organization_id, external_subscription_id, any(customer_id) as customer_id
    from {{ ref('stg_subscriptions') }}
    group by organization_id, external_subscription_id
)

select
    e.organization_id as organization_id,
    toDate(e.timestamp, 'UTC') as date,
    e.code as billable_metric_code,
    s.customer_id as customer_id,
    any(c.external_customer_id) as external_customer_id,
    e.external_subscription_id as external_subscription_id,
    count() as events_count,
    toDecimal128(sum(toDecimal128OrZero(e.properties[ifNull(m.field_name, '')], 12)), 12) as field_value_sum
from {{ ref('stg_events') }} as e
inner join {{ ref('stg_billable_metrics') }} as m
    on m.organization_id = e.organization_id and m.billable_metric_code = e.code
left join subscription_customers as s
    on s.organization_id = e.organization_id and s.external_subscription_id = e.external_subscription_id
left join {{ ref('stg_customers') }} as c
    on c.organization_id = e.organization_id and c.customer_id = s.customer_id
group by organization_id, date, billable_metric_code, customer_id, external_subscription_id
