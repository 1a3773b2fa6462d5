{{ config(
    materialized='incremental',
    incremental_strategy='delete_insert',
    unique_key='organization_id, date',
    engine='MergeTree',
    order_by='(organization_id, date, billable_metric_code, external_subscription_id)',
) }}
-- Raw usage per UTC day, metric and subscription, aggregated from the events once per day: an
-- incremental build re-aggregates whole days that received events since the previous build
-- (delete + insert of those days), never the whole history. Read from the events table with
-- FINAL rather than stg_warehouse__events: retries of an event share its whole sorting key and
-- collapse there, without the global per-transaction GROUP BY of the staging model. (A
-- transaction id re-sent with another timestamp counts twice here, once in rating.)
-- A change of a metric's field_name, or a metric created for a code that already has events,
-- reaches past days with `dbt run --full-refresh`.
with metric_fields as (
    select organization_id, billable_metric_code, ifNull(field_name, '') as field_name
    from {{ ref('stg_warehouse__billable_metrics') }}
),

{% if is_incremental() %}
changed_days as (
    {{ days_with_new_events(this) }}
),
{% endif %}

daily as (
    select
        e.organization_id as organization_id,
        toDate(e.timestamp, 'UTC') as date,
        e.code as billable_metric_code,
        e.external_subscription_id as external_subscription_id,
        count() as events_count,
        toDecimal128(sum(toDecimal128OrZero(e.properties[m.field_name], 12)), 12) as field_value_sum,
        max(e.ingested_at) as last_ingested_at
    from {{ source('warehouse', 'events') }} as e final
    inner join metric_fields as m
        on m.organization_id = e.organization_id and m.billable_metric_code = e.code
    where {{ events_to_aggregate('e') }}
    group by organization_id, date, billable_metric_code, external_subscription_id
)

select * from daily
