{{ config(materialized='table', engine='MergeTree', order_by='(organization_id, date, billable_metric_code, customer_id)') }}
-- Raw usage per day, metric, customer and subscription (UTC days): events received and the sum
-- of the metric's numeric field (not billing units: aggregation, filters and rounding are
-- applied by rating). Events of unknown subscriptions keep an empty customer.
-- Read from the events table with FINAL rather than stg_warehouse__events: retries of an event share its
-- whole sorting key and collapse there, without the global per-transaction GROUP BY that makes
-- stg_warehouse__events expensive over the full history. (A transaction id re-sent with another timestamp
-- counts twice here, once in rating.)
with subscription_customers as (
    select organization_id, external_subscription_id, any(customer_id) as customer_id
    from {{ ref('stg_warehouse__subscriptions') }}
    group by organization_id, external_subscription_id
),

metric_fields as (
    select organization_id, billable_metric_code, ifNull(field_name, '') as field_name
    from {{ ref('stg_warehouse__billable_metrics') }}
),

daily as (
    select
        e.organization_id as organization_id,
        toDate(e.timestamp, 'UTC') as date,
        e.code as billable_metric_code,
        e.external_subscription_id as external_subscription_id,
        count() as events_count,
        toDecimal128(sum(toDecimal128OrZero(e.properties[m.field_name], 12)), 12) as field_value_sum
    from {{ source('warehouse', 'events') }} as e final
    inner join metric_fields as m
        on m.organization_id = e.organization_id and m.billable_metric_code = e.code
    group by organization_id, date, billable_metric_code, external_subscription_id
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
from daily as d
left join subscription_customers as s
    on s.organization_id = d.organization_id and s.external_subscription_id = d.external_subscription_id
left join {{ ref('stg_warehouse__customers') }} as c
    on c.organization_id = d.organization_id and c.customer_id = s.customer_id
