{{ config(
    materialized='incremental',
    incremental_strategy='delete_insert',
    unique_key='organization_id, date',
    engine='MergeTree',
    order_by='(organization_id, property_key, property_value, date, billable_metric_code)',
) }}
-- Events per UTC day, event code and property (key and value), aggregated from the events once
-- per day like fct_usage_daily_by_subscription, for the Usage page's filter by event property:
-- an event counts once under each of its properties. Sorted by property first: the page asks
-- for one key (and maybe one value) over a date range. A property whose values are all distinct
-- (an id) makes this table as large as a day of events: such filters belong in SQL on the
-- events table.
-- Deduplicated without FINAL where there is nothing to deduplicate: an organization's day whose
-- events as stored are exactly as many as fct_usage_daily_by_subscription counted with FINAL
-- (built just before, in the same run) holds no retry. The count after FINAL only grows between
-- the two reads and stored events are never fewer than it, so equal counts mean no retry at all
-- (the one exception: a failed ingest request's rows deleted in between, ingestion's
-- all-or-nothing rollback). Days where every organization passes are aggregated straight from
-- the stored events; the other days (retries not yet merged away, codes without a metric, days
-- newer than that count) are read with FINAL. On 10M events without retries this model's warehouse CPU fell from 2.8
-- to 1.8 CPU-s; with retries on a few days it stays where it was. A retry that lands between
-- the two reads of one build counts twice until the next build re-aggregates its day (its
-- ingested_at is past the watermark), as an insert in flight is.
-- It reads the events itself rather than deriving from fct_usage_daily_by_subscription: a
-- breakdown by property value kept per subscription would be as large as the events for any
-- numeric property (the metric's field).
-- Grouped by one string that packs the whole key (organization, day, code, property key and
-- value; the day, organization and lengths in fixed width, so two keys pack alike only when they
-- are equal) rather than by the five columns: the engine groups several columns holding strings
-- by serializing them row by row, which cost more than packing one string and hashing it (on
-- 10M events with three properties each, ~4 against ~7 warehouse CPU-s). Unpacked per group.
-- An event whose organization and code are among the billable metrics' packs its part of the
-- key in 6 bytes (the numbers of its organization and code in `known`, and the day) instead of
-- 22 and more: with short property keys and values the whole key then stays within 24 bytes,
-- which the engine's string hash table keeps and compares as fixed-size words rather than
-- hashing a string stored apart (on 10M events ~15-20% less warehouse CPU for this model). Any
-- other event packs its organization and code themselves.
{# The event's part of the key (`event_key`, once per event) and the property columns, for both
   reads below; then one row per event property with its whole packed key. #}
{% set packed_properties -%}
    concat(
            event_key,
            if(length(property_key) < 255, char(length(property_key)), concat(char(255),
                toFixedString(reinterpretAsString(toUInt32(length(property_key))), 4))),
            property_key,
            property_value
        ) as packed_key,
        ingested_at
{%- endset %}
{% set event_properties -%}
    if(
            organization_index != 0 and code_index != 0,
            concat(
                toFixedString(reinterpretAsString(organization_index), 2),
                toFixedString(reinterpretAsString(code_index), 2),
                toFixedString(reinterpretAsString(toDate(e.timestamp, 'UTC')), 2)
            ),
            concat(
                '\0\0',
                toFixedString(reinterpretAsString(e.organization_id), 16),
                toFixedString(reinterpretAsString(toDate(e.timestamp, 'UTC')), 2),
                toFixedString(reinterpretAsString(toUInt32(length(e.code))), 4),
                e.code
            )
        ) as event_key,
        toUInt16(transform(e.organization_id, known.1, arrayEnumerate(known.1), 0))
            as organization_index,
        -- Evaluated on the LowCardinality code's dictionary, not per event.
        toUInt16(transform(e.code, known.2, arrayEnumerate(known.2), 0)) as code_index,
        e.properties.keys as property_keys,
        e.properties.values as property_values,
        e.ingested_at as ingested_at
{%- endset %}

with
    -- The organizations and codes of the billable metrics, numbered (at most 65,535 of each, so
    -- a number fits two bytes): an event of a known organization and code packs its key with
    -- their numbers, any other event with the organization and code themselves.
    (
        select (
            arraySlice(groupUniqArray(organization_id), 1, 65535),
            arraySlice(groupUniqArray(toString(billable_metric_code)), 1, 65535)
        )
        from {{ ref('stg_warehouse__billable_metrics') }}
    ) as known,

{% if is_incremental() %}
changed_days as (
    {{ days_with_new_events(this) }}
),
{% endif %}

-- Per organization and day: the sum over codes is as telling as each code's count (the count
-- after FINAL never exceeds the stored one, code by code), and these keys group faster.
stored_counts as (
    select
        e.organization_id as organization_id,
        toDate(e.timestamp, 'UTC') as date,
        count() as events_count
    from {{ source('warehouse', 'events') }} as e
    where {{ events_to_aggregate('e') }}
    group by organization_id, date
),

deduplicated_counts as (
    select organization_id, date, sum(events_count) as events_count
    from {{ ref('fct_usage_daily_by_subscription') }}
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
    select {{ event_properties }}
    from {{ source('warehouse', 'events') }} as e
    where {{ events_to_aggregate('e') }}
        and toDate(e.timestamp, 'UTC') not in (select arrayJoin(retried_days))
),

events_of_days_with_retries as (
    select {{ event_properties }}
    from {{ source('warehouse', 'events') }} as e final
    -- Before FINAL merges (a sorting key column, which retries share): only these days' events
    -- are merged. Nothing is read when there are none.
    prewhere toDate(e.timestamp, 'UTC') in (select arrayJoin(retried_days))
    where {{ events_to_aggregate('e') }}
),

packed_counts as (
    select packed_key, count() as events_count, max(ingested_at) as last_ingested_at
    from (
        select {{ packed_properties }}
        from (
            select * from events_of_days_without_retries
            union all
            select * from events_of_days_with_retries
        )
        array join property_keys as property_key, property_values as property_value
    )
    group by packed_key
),

-- The packed key's layout: the event's part, either the organization's and the code's numbers
-- in `known` (2 bytes each, the organization's never 0) and the day (2), or two zero bytes, the
-- organization (16), the day (2), the code's length (4) and the code; then the property key's
-- length (1 byte below 255, else 255 and 4 bytes), the property key, the property value (the
-- rest).
unpacked_counts as (
    select
        substring(packed_key, 1, 2) != '\0\0' as is_known,
        if(is_known, 0, reinterpretAsUInt32(substring(packed_key, 21, 4))) as code_length,
        if(is_known, 7, 25 + code_length) as key_length_at,
        reinterpretAsUInt8(substring(packed_key, key_length_at, 1)) as short_key_length,
        if(
            short_key_length < 255,
            short_key_length,
            reinterpretAsUInt32(substring(packed_key, key_length_at + 1, 4))
        ) as key_length,
        key_length_at + if(short_key_length < 255, 1, 5) as key_at,
        if(
            is_known,
            known.1[reinterpretAsUInt16(substring(packed_key, 1, 2))],
            reinterpretAsUUID(substring(packed_key, 3, 16))
        ) as organization_id,
        reinterpretAsDate(substring(packed_key, if(is_known, 5, 19), 2)) as date,
        toLowCardinality(if(
            is_known,
            known.2[reinterpretAsUInt16(substring(packed_key, 3, 2))],
            substring(packed_key, 25, code_length)
        )) as billable_metric_code,
        substring(packed_key, key_at, key_length) as property_key,
        substring(packed_key, key_at + key_length) as property_value,
        events_count,
        last_ingested_at
    from packed_counts
)

select
    organization_id,
    date,
    billable_metric_code,
    property_key,
    property_value,
    events_count,
    last_ingested_at
from unpacked_counts
