{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)',
          model_query_settings={'enable_materialized_cte': 1}) }}
-- One fee per event of a pay-in-advance charge, up to the rating instant. Only the periods of
-- plans that have such a charge are rated, and only their subscriptions' events are read (the
-- IN set on the events' primary-key prefix, on a full build too): the events of the other
-- subscriptions are never read, hashed or deduplicated here, nor, on an incremental run, those
-- of the subscriptions without a period to rate. Only the charge models and rounding precisions
-- and the usage features (aggregation types, filters, groups, expressions, proration) of the
-- pay-in-advance charges in use are compiled in. The re-sent transactions' set is computed once
-- (a materialized CTE, see scoped_events).
{%- set incremental = rating_is_incremental() %}
with started_charge_periods as (
    select *
    from {{ ref('int_rating_periods') }}
    where period_kind = 'charges'
        and (organization_id, plan_id) in (
            select organization_id, plan_id from {{ ref('stg_warehouse__charges') }} where pay_in_advance = 1)
)
{%- if incremental %},

-- Where each subscription's periods to rate begin, and the first day of the month of the latest
-- such start (on a day: April 1st, the open calendar periods).
subscription_spans as (
    select organization_id, external_subscription_id, min(period_from) as span_from
    from started_charge_periods
    group by organization_id, external_subscription_id
),

-- The earliest span start of each subscription id (over organizations), as two sorted arrays.
span_starts as (
    select groupArray(external_subscription_id) as subscription_ids, groupArray(span_from) as span_froms
    from (
        select external_subscription_id, min(span_from) as span_from
        from subscription_spans
        group by external_subscription_id
        order by external_subscription_id)
),

-- The events an incremental run reads, read once (MATERIALIZED: scoped_events reads them three
-- times, for the re-sent set, the single-version events and the re-sent ones; re-reading the
-- stored events each time decompressed every event's properties of the earlier months again).
-- From the latest span's month on, every rated subscription's events; before it, only those of
-- the subscriptions whose periods begin earlier (on a day, the anniversary periods opened in
-- March), each from its own span's start, rather than every rated subscription's from the
-- earliest span of all. Every event at or after its own subscription's first rated period is
-- still read, so the fees are the same: an event before it finds no period to be placed in, and
-- an earlier version of a re-sent id only counted within its own subscription's span. Only the
-- columns scoped_events reads are held (not the raw payload).
events_to_rate as materialized (
    select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
        precise_total_amount_cents, ingested_at
    from {{ source('warehouse', 'events') }}
    where timestamp >= (select toStartOfMonth(max(span_from)) from subscription_spans)
        and organization_id in (select organization_id from subscription_spans)
        and external_subscription_id in (select external_subscription_id from subscription_spans)
    union all
    select organization_id, external_subscription_id, transaction_id, code, timestamp, properties,
        precise_total_amount_cents, ingested_at
    from {{ source('warehouse', 'events') }}
    where timestamp < (select toStartOfMonth(max(span_from)) from subscription_spans)
        and timestamp >= (select min(span_from) from subscription_spans)
        and organization_id in (
            select organization_id from subscription_spans
            where span_from < (select toStartOfMonth(max(span_from)) from subscription_spans))
        and external_subscription_id in (
            select external_subscription_id from subscription_spans
            where span_from < (select toStartOfMonth(max(span_from)) from subscription_spans))
        and timestamp >= transform(external_subscription_id,
            (select subscription_ids from span_starts), (select span_froms from span_starts),
            toDateTime64('2299-12-31 00:00:00', 3, 'UTC'))
)
{%- endif %}

select * from ({{ pay_in_advance_charge_fees('started_charge_periods', rating_as_of(),
                                         events='events_to_rate' if incremental else none, by_subscription=true,
                                         pricing=pricing_in_use(1), features=usage_in_use(1),
                                         materialize_resent=true) }})
