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
-- Grouped by the metric's position in an array of the billable metrics rather than by
-- organization and code: a number and the subscription id group much faster than a UUID, a
-- LowCardinality code and the subscription id (on 10M events the model's warehouse CPU fell from
-- ~4.2 to ~3.5 CPU-s). The position is found by a hash of organization and code, and kept only
-- when the event's organization and code are the metric's own, so it is exact: an event of a
-- code without a metric is left out even if its hash meets a metric's (as the join to the
-- metrics did). The build fails if two metrics share a hash. Organization, code and the
-- metric's field come back from the position (per group, or per event for the field).
-- When no billable metric has a field (count-only metrics), the field's lookup and Decimal sum
-- are compiled out (a constant 0: ~0.8 of ~3.5 CPU-s per 10M events); a metric given a field
-- between that check and the query fails the build rather than summing 0. (An event property
-- named '' is not a field: with fields compiled in, a metric without one looks it up and sums it.)
{%- set sums_fields = billable_metrics_have_fields() %}
with
    (
        select (
            {{ metric_lookup_keys() }},
            groupArray(ifNull(field_name, '')),
            {{ metric_lookup_check() }}{% if not sums_fields %},
            throwIf(
                countIf(ifNull(field_name, '') != '') > 0,
                'a billable metric got a field during the build: build again'
            ){% endif %}
        )
        from {{ ref('stg_warehouse__billable_metrics') }}
    ) as metrics,

{% if is_incremental() %}
changed_days as (
    {{ days_with_new_events(this) }}
),
{% endif %}

metric_events as (
    select
        {{ metric_number('metrics') }} as metric_index,
        e.external_subscription_id as external_subscription_id,
        toDate(e.timestamp, 'UTC') as date,
        {% if sums_fields %}e.properties[metrics.4[metric_index]] as field_value,{% endif %}
        e.ingested_at as ingested_at
    from {{ source('warehouse', 'events') }} as e final
    where {{ events_to_aggregate('e') }}
        and {{ of_metric('metrics') }}
),

daily_by_metric_index as (
    select
        metric_index,
        date,
        external_subscription_id,
        count() as events_count,
        {% if sums_fields -%}
        toDecimal128(sum(toDecimal128OrZero(field_value, 12)), 12)
        {%- else -%}
        toDecimal128(0, 12)
        {%- endif %} as field_value_sum,
        max(ingested_at) as last_ingested_at
    from metric_events
    group by metric_index, date, external_subscription_id
),

daily as (
    select
        metrics.2[metric_index] as organization_id,
        date,
        toLowCardinality(metrics.3[metric_index]) as billable_metric_code,
        external_subscription_id,
        events_count,
        field_value_sum,
        last_ingested_at
    from daily_by_metric_index
)

select * from daily
