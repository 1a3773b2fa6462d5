{{ config(
    materialized='incremental',
    incremental_strategy='delete_insert',
    unique_key='organization_id, date',
    engine='MergeTree',
    order_by='(organization_id, property_key, property_value, date, billable_metric_code)',
) }}
-- Events per UTC day, metric and DECLARED property (key and value), aggregated from the events
-- once per day like fct_usage_daily_by_subscription, for the Usage page's filter by event
-- property. A property is declared when the event's billable metric (its organization and code)
-- lists the key in its filters (Lago's billable metric filters, OpenMeter's meter groupBy): an
-- event of such a metric counts once under each declared key it carries, with its actual value
-- (any value, not only the listed ones; an event without the key is not counted under it).
-- Every other property (amounts, user ids, keys no metric declares) and every event of a code
-- without filters stays out: rolling them all up made this table as large as the events. The
-- page reads those live from the events table. Charges' grouped_by keys are not kept: they are
-- typically per-user or per-workspace ids, as many values as events (the fees by group already
-- carry them), and a key worth filtering on is declared as a filter (a charge filter's keys
-- must be).
-- A metric's filters changed, or declared on a metric that already has events, reach past days
-- with `dbt run --full-refresh` (as a change of field_name does in the subscription mart).
-- Deduplicated without FINAL where there is nothing to deduplicate: an organization's day whose
-- stored events of the declaring metrics' codes are exactly as many as
-- fct_usage_daily_by_subscription counted for those codes with FINAL (built just before, in the
-- same run) holds no retry among them. The count after FINAL only grows between the two reads
-- and stored events are never fewer than it, so equal counts mean no retry at all (the one
-- exception: a failed ingest request's rows deleted in between, ingestion's all-or-nothing
-- rollback). Days where every organization passes are aggregated straight from the stored
-- events; the other days (retries not yet merged away, a declaring code sent to an organization
-- without that metric, days newer than that count) are read with FINAL. A retry that lands
-- between the two reads of one build counts twice until the next build re-aggregates its day
-- (its ingested_at is past the watermark), as an insert in flight is.
-- Each declared key is looked up in the event's properties (a metric declares few keys) rather
-- than exploding the whole map. Grouped by the metric's number, the day, the key's number and
-- the value; the organization, code and key come back from the numbers per group. (Packing the
-- four into one string, as the former every-property version did, measured no cheaper here.)
{# The declared metric's number, the day and the properties of each event of a declaring
   metric, for both reads below. #}
{% set declared_metric_events -%}
    {{ metric_number('declared') }} as metric_index,
        toDate(e.timestamp, 'UTC') as date,
        e.properties.keys as property_keys,
        e.properties.values as property_values,
        e.ingested_at as ingested_at
{%- endset %}

with
    -- The billable metrics that declare filters, numbered, found by a hash of organization and
    -- code: their organizations, codes and declared keys.
    (
        select (
            {{ metric_lookup_keys() }},
            groupArray(arraySort(mapKeys(filters))),
            {{ metric_lookup_check() }}
        )
        from {{ ref('stg_warehouse__billable_metrics') }}
        where notEmpty(filters)
    ) as declared,

{% if is_incremental() %}
changed_days as (
    {{ days_with_new_events(this) }}
),
{% endif %}

-- Per organization and day, the events of the declaring metrics' codes (a check on the
-- LowCardinality code's dictionary, not per event): the sum over codes is as telling as each
-- code's count (the count after FINAL never exceeds the stored one, code by code), and these
-- keys group faster.
stored_counts as (
    select
        e.organization_id as organization_id,
        toDate(e.timestamp, 'UTC') as date,
        count() as events_count
    from {{ source('warehouse', 'events') }} as e
    where {{ events_to_aggregate('e') }}
        and e.code in (select arrayJoin(declared.3))
    group by organization_id, date
),

deduplicated_counts as (
    select organization_id, date, sum(events_count) as events_count
    from {{ ref('fct_usage_daily_by_subscription') }}
    where billable_metric_code in (select arrayJoin(declared.3))
    group by organization_id, date
),

days_with_retries as (
    select organization_id, date
    from stored_counts
    where (organization_id, date, events_count)
        not in (select organization_id, date, events_count from deduplicated_counts)
),

-- Evaluated once for the whole statement, so each day is read by exactly one branch. Whole
-- days (of every organization): a per-event check of the day is cheap, one of organization,
-- day and code cost more than FINAL saved whenever any day had a retry.
(select groupUniqArray(date) from days_with_retries) as retried_days,

events_of_days_without_retries as (
    select {{ declared_metric_events }}
    from {{ source('warehouse', 'events') }} as e
    where {{ events_to_aggregate('e') }}
        and toDate(e.timestamp, 'UTC') not in (select arrayJoin(retried_days))
        and {{ of_metric('declared') }}
),

events_of_days_with_retries as (
    select {{ declared_metric_events }}
    {% if is_unit_test() -%}
    from {{ source('warehouse', 'events') }} as e
    where toDate(e.timestamp, 'UTC') in (select arrayJoin(retried_days))
    {%- else -%}
    from {{ source('warehouse', 'events') }} as e final
    -- Before FINAL merges (a sorting key column, which retries share): only these days' events
    -- are merged. Nothing is read when there are none.
    prewhere toDate(e.timestamp, 'UTC') in (select arrayJoin(retried_days))
    where 1
    {%- endif %}
        and {{ events_to_aggregate('e') }}
        and {{ of_metric('declared') }}
),

-- One row per event and declared key it carries: the key's position among the event's
-- properties gives its value.
declared_properties as (
    select
        metric_index,
        date,
        key_number,
        indexOf(property_keys, declared_key) as key_position,
        property_values[key_position] as property_value,
        ingested_at
    from (
        select * from events_of_days_without_retries
        union all
        select * from events_of_days_with_retries
    )
    array join
        declared.4[metric_index] as declared_key,
        arrayEnumerate(declared.4[metric_index]) as key_number
    where key_position != 0
),

declared_counts as (
    select
        metric_index,
        date,
        key_number,
        property_value,
        count() as events_count,
        max(ingested_at) as last_ingested_at
    from declared_properties
    group by metric_index, date, key_number, property_value
),

named_counts as (
    select
        declared.2[metric_index] as organization_id,
        date,
        toLowCardinality(declared.3[metric_index]) as billable_metric_code,
        declared.4[metric_index][key_number] as property_key,
        property_value,
        events_count,
        last_ingested_at
    from declared_counts
)

select
    organization_id,
    date,
    billable_metric_code,
    property_key,
    property_value,
    events_count,
    last_ingested_at
from named_counts
