{{ config(materialized='table', order_by='(organization_id, subscription_id, period_from, charge_id)',
          model_query_settings={'enable_materialized_cte': 1}) }}
-- One fee per event of a pay-in-advance charge, up to the rating instant. Only the periods of
-- plans that have such a charge are rated, and only their subscriptions' events are read (the
-- IN set on the events' primary-key prefix, on a full build too): the events of the other
-- subscriptions are never read, hashed or deduplicated here, nor, on an incremental run, those
-- of the subscriptions without a period to rate (the others are read once, each from its own
-- first period to rate: incremental_events). Only the charge models and rounding precisions
-- and the usage features (aggregation types, filters, groups, expressions, proration) of the
-- pay-in-advance charges in use are compiled in. The re-sent transactions' set is computed once
-- (a materialized CTE, see scoped_events).
-- Each fee keeps the event it priced as placed in its period (`placed_event`), with the run's
-- start, its rating instant and a fingerprint of the pay-in-advance catalog. An incremental run
-- takes a subscription's earlier events from there instead of finding and placing them again
-- (on a day, the anniversary periods opened last month hold most of the events re-priced, and
-- placing them was most of this query's cost): see continued_subscriptions.
{%- set incremental = rating_is_incremental() %}
{%- set previous = previous_placed_events() if incremental else none %}
with started_charge_periods as (
    select *
    from {{ ref('int_rating_periods') }}
    where period_kind = 'charges'
        and (organization_id, plan_id) in (
            select organization_id, plan_id from {{ ref('stg_warehouse__charges') }} where pay_in_advance = 1)
)
{%- if previous %},

previous_run as (
    select any(rated_at) as rated_at, any(rated_until) as rated_until, any(catalog_fingerprint) as catalog_fingerprint
    from {{ previous }}
),

-- The periods the previous run rated, with what placing an event in them depends on.
previous_periods as (
    select
        subscription_id, period_from,
        any((period_to, timezone, plan_id, plan_version, placed_event.19, placed_event.20, placed_event.21)) as shape
    from {{ previous }}
    group by subscription_id, period_from
),

-- The subscriptions whose earlier placed events are taken from the previous run: every period
-- of theirs rated now was rated then, alike, under the same pay-in-advance catalog, and no event
-- of theirs stored by then was left out for being past its rating instant. The others are read
-- from the events table whole, as on a run without a previous one.
continued_subscriptions as (
    select p.organization_id as organization_id, p.external_subscription_id as external_subscription_id
    from started_charge_periods as p
    left join (select *, 1 as found from previous_periods) as q
        on q.subscription_id = p.subscription_id and q.period_from = p.period_from
    group by p.organization_id, p.external_subscription_id
    having min(q.found = 1 and q.shape = (p.period_to, p.timezone, p.plan_id, p.plan_version,
                                           p.service_from_date, p.service_to_date, p.full_days)) = 1
        and (select catalog_fingerprint from previous_run) = {{ pay_in_advance_catalog_fingerprint() }}
        and (p.organization_id, p.external_subscription_id) not in (
            select organization_id, external_subscription_id
            from {{ source('warehouse', 'events') }}
            where timestamp > (select rated_until from previous_run)
                and timestamp <= {{ rating_as_of() }}
                and ingested_at <= (select rated_at from previous_run)
                and external_subscription_id in (select external_subscription_id from started_charge_periods))
),

{{ incremental_events('started_charge_periods', continued='continued_subscriptions',
                      continued_since='(select rated_at from previous_run)') }},

-- The continued subscriptions' events placed by the previous run in the periods rated now, but
-- those of a transaction with a version read again (ingested since, within the span): its
-- latest version is placed anew.
placed_before as (
    select {{ placed_event_fields('placed_event') }}
    from {{ previous }}
    -- Sorted by period within a subscription, so the primary key skips every other period (after
    -- a full build the table holds every period).
    where (organization_id, subscription_id, period_from) in (
            select organization_id, subscription_id, period_from from started_charge_periods)
        and (organization_id, external_subscription_id) in (select organization_id, external_subscription_id from continued_subscriptions)
        and (organization_id, external_subscription_id, source_transaction_id) not in (
            select organization_id, external_subscription_id, transaction_id from events_to_rate)
)
{%- elif incremental %},

{{ incremental_events('started_charge_periods') }}
{%- endif %}

select
    *,
    toDateTime64('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}', 6, 'UTC') as rated_at,
    {{ rating_as_of() }} as rated_until,
    {{ pay_in_advance_catalog_fingerprint() }} as catalog_fingerprint
from ({{ pay_in_advance_charge_fees('started_charge_periods', rating_as_of(),
                                    events='events_to_rate' if incremental else none, by_subscription=true,
                                    pricing=pricing_in_use(1), features=usage_in_use(1),
                                    materialize_resent=true, placed='placed_before' if previous else none,
                                    keep_placed=true) }})
