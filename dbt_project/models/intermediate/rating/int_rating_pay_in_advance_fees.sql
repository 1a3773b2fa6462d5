{{ config(materialized='table', order_by='(organization_id, subscription_id, charge_id, period_from)') }}
-- One fee per event of a pay-in-advance charge, up to the rating instant. Only the periods of
-- plans that have such a charge are rated, and only their subscriptions' events are read (the
-- IN set on the events' primary-key prefix, on a full build too): the events of the other
-- subscriptions are never read, hashed or deduplicated here, nor, on an incremental run, those
-- of the subscriptions without a period to rate. Only the charge models and rounding precisions
-- and the usage features (aggregation types, filters, groups, expressions, proration) of the
-- pay-in-advance charges in use are compiled in.
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

-- The events an incremental run reads: from that month on, every rated subscription's; before
-- it, only those of the subscriptions whose periods begin earlier (on a day, the anniversary
-- periods opened in March), so the primary key skips the granules of the others' earlier
-- events instead of reading, hashing and deduplicating them to drop them at the placement. Every
-- event at or after its own subscription's first rated period is read, as before, so the fees
-- are the same (an earlier version of a re-sent id only counted within its own subscription's
-- span). At 100M events a granule holds a few subscriptions' month of events, so the pruning
-- is sharp; at 10M it is weak (a granule holds ~25).
events_to_rate as (
    select *
    from {{ source('warehouse', 'events') }}
    where timestamp >= (select toStartOfMonth(max(span_from)) from subscription_spans)
    union all
    select *
    from {{ source('warehouse', 'events') }}
    where timestamp < (select toStartOfMonth(max(span_from)) from subscription_spans)
        and organization_id in (
            select organization_id from subscription_spans
            where span_from < (select toStartOfMonth(max(span_from)) from subscription_spans))
        and external_subscription_id in (
            select external_subscription_id from subscription_spans
            where span_from < (select toStartOfMonth(max(span_from)) from subscription_spans))
)
{%- endif %}

select * from ({{ pay_in_advance_charge_fees('started_charge_periods', rating_as_of(),
                                         events='events_to_rate' if incremental else none, by_subscription=true,
                                         pricing=pricing_in_use(1), features=usage_in_use(1)) }})
