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
-- The metric's field is looked up per event in two arrays (a hash of organization and code ->
-- field) rather than by joining the metrics to every event: a quarter of this model's CPU on a
-- full build (and hashing rather than formatting the organization id as text: 4.9 -> 4.4
-- CPU-s per 10M events in one series of runs, within the noise in another). The build fails if
-- two metrics share a hash; an event of a code without a metric whose hash meets a metric's is
-- summed in a group that the final filter leaves out, as it leaves out every code without a
-- metric (as the join did).
with
    (
        select (
            groupArray(cityHash64(organization_id, billable_metric_code)),
            groupArray(ifNull(field_name, '')),
            throwIf(
                uniqExact(cityHash64(organization_id, billable_metric_code)) != count(),
                'two billable metrics share a field lookup hash'
            )
        )
        from {{ ref('stg_warehouse__billable_metrics') }}
    ) as metric_fields,

{% if is_incremental() %}
changed_days as (
    {{ days_with_new_events(this) }}
),
{% endif %}

fielded_events as (
    select
        e.organization_id as organization_id,
        e.timestamp as timestamp,
        e.code as code,
        e.external_subscription_id as external_subscription_id,
        e.properties as properties,
        e.ingested_at as ingested_at,
        transform(cityHash64(e.organization_id, e.code), metric_fields.1, metric_fields.2, '\0') as field_name
    from {{ source('warehouse', 'events') }} as e final
    where {{ events_to_aggregate('e') }}
),

daily as (
    select
        organization_id,
        toDate(timestamp, 'UTC') as date,
        code as billable_metric_code,
        external_subscription_id,
        count() as events_count,
        toDecimal128(sum(toDecimal128OrZero(properties[field_name], 12)), 12) as field_value_sum,
        max(ingested_at) as last_ingested_at
    from fielded_events
    where field_name != '\0'
    group by organization_id, date, billable_metric_code, external_subscription_id
    having (organization_id, billable_metric_code) in (
        select organization_id, billable_metric_code from {{ ref('stg_warehouse__billable_metrics') }}
    )
)

select * from daily
